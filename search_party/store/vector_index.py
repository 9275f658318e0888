"""The FAISS index of sighting vectors: a cache of SQLite, never the only copy of anything.

``VectorIndex.open`` loads the index file and checks it against the database.  It rebuilds the
whole index from SQLite when the file is missing, corrupt (bad trailer, checksum or FAISS data) or
stale (made by another model version or for another dimension, or too small or too large for its
index type), and otherwise catches up incrementally.  Rebuilding reads SQLite without any write
transaction, so writers never wait for it.

Keeping up with SQLite, without ever re-reading the file (``sync``):
- every sighting id at or below ``through`` is in the index unless it was deleted since.  Sighting
  ids never repeat (AUTOINCREMENT) and are handed out one write transaction at a time, so "id above
  ``through``" is exactly "stored since"; those rows are added;
- every deletion of a sighting (opt-out, retention, erasure, cascades) is written by a trigger to
  ``sighting_deletions`` (schema 11), numbered in order; the index remembers the last number it
  applied (``deletions_seen``) and removes only what was deleted since.  The log keeps a week
  (``DELETION_LOG_DAYS``); an index older than what is left reconciles against every stored id
  once.
Both watermarks are written into the file, so a loaded file continues from where it was saved.

One index per process (``for_process``), memory-mapped: a running server opens the file once
and then only syncs, on every search.  With FAISS's ``IO_FLAG_MMAP_IFC`` the vectors of a flat or
SQ8 index are read straight from the page cache (shared by every process that maps the file, and
not counted twice), never copied.  A mapped index cannot be changed (FAISS aborts the process),
so it takes what arrives since in a small exact side index (``delta``) and hides what was
deleted since (``removed``, excluded from every search); ``compact`` (the worker, every minute)
rewrites the file once those are more than ``COMPACT_AT`` vectors, a running server maps the new
file on a background thread and swaps it in at a sync (never making a search wait for it), and
erasure (``refresh``) rewrites it at once so no deleted vector stays on disk.

Which index, and why:
- up to ``FLAT_LIMIT`` vectors, exact search: ``IndexIDMap2(IndexFlatIP)``.  Vectors are
  L2-normalised, so inner product is cosine similarity; every score is exact, nothing is trained,
  adding and removing are cheap, and at 100k × 1280-d the brute-force scan still costs only tens of
  milliseconds (and a geofenced search scores far fewer vectors than that).
- above it, 8-bit scalar quantisation: ``IndexIDMap2(IndexScalarQuantizer SQ8)``.  Memory is
  the constraint (1M × 1280-d float32 is 5 GB); SQ8 keeps one byte per dimension (1.2 GB at a
  million), its only training is each dimension's range (a second, where IVF-PQ needs k-means
  over a sample, many minutes at a million on two cores), removal works through the id map, and
  a geofenced search still scores exactly the allowed ids while reading a quarter of the bytes.
  Its accuracy cost on real dogs is measured with ``search-party eval search DIR --index sq8``
  (none visible on MPDD), and ``search-party bench search`` times this same form at 1M.  HNSW was
  not chosen: it cannot remove vectors, and filtering a graph walk down to a small geofenced
  subset loses recall; IVF-PQ was dropped for its training time and its lossier codes.

Searches take an optional set of allowed sighting ids (the geofence) and pass it to FAISS as an
``IDSelectorBatch``, so vectors outside the set are never scored.

The file: the FAISS index as ``faiss.write_index`` writes it (so FAISS can map it), then a JSON
header (model version, dimension, count, kind, the two watermarks, the FAISS part's length and
sha256), its length and ``MAGIC``.  The checksum is verified once per load, streaming.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import faiss
import numpy as np
from sqlite_utils import Database

from search_party.store import storage
from search_party.store.db import write_transaction
from search_party.store.index_kinds import new_index

log = logging.getLogger(__name__)

FLAT_LIMIT = 100_000
MAGIC = b"SPFAISS2"
OLD_MAGIC = b"SPFAISS1"  # format 1: header first, FAISS data serialised after it (not mappable)
FORMAT = 2
TRAILER = struct.Struct("<I8s")  # header length, MAGIC
SQ8_SAMPLE = 20_000  # vectors whose per-dimension range trains the SQ8 index
COMPACT_AT = 1_000  # changes since the file was written that make ``compact`` rewrite it ...
COMPACT_SHARE = 0.01  # ... or this share of the index, whichever is larger
DELETION_LOG_DAYS = 7
_READ_BLOCK = 8 << 20


class IndexFileError(Exception):
    """The index file cannot be trusted; the caller rebuilds it."""


@dataclass(frozen=True)
class Plan:
    """Which index to build for ``count`` vectors: exact up to the flat limit, SQ8 above it."""

    kind: str  # "flat" or "sq8" (index_kinds.INDEX_KINDS)

    @staticmethod
    def for_size(count: int, flat_limit: int = FLAT_LIMIT) -> Plan:
        return Plan("flat" if count <= flat_limit else "sq8")


def _kind_of(index: faiss.Index) -> str:
    """The Plan kind of a loaded index ("other" for a form this version no longer builds)."""
    if not isinstance(index, faiss.IndexIDMap2):
        return "other"
    inner = faiss.downcast_index(index.index)
    return "sq8" if isinstance(inner, faiss.IndexScalarQuantizer) else "flat"


@dataclass(frozen=True)
class _Watermarks:
    through: int  # the largest sighting id ever handed out
    deletions: int  # the number of the last logged deletion
    oldest_logged: int | None  # the first deletion number still in the log


def _watermarks(db: Database) -> _Watermarks:
    """Both watermarks and the log's start, in one statement (one consistent snapshot)."""
    through, deletions, oldest = db.execute(
        "SELECT (SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'sightings'), "
        "(SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'sighting_deletions'), "
        "(SELECT min(seq) FROM sighting_deletions)").fetchone()
    return _Watermarks(through, deletions, oldest)


def _log_misses(marks: _Watermarks, seen: int) -> bool:
    """Whether deletions after ``seen`` were pruned from the log before they were applied."""
    return marks.deletions > seen and (marks.oldest_logged is None or marks.oldest_logged > seen + 1)


def _members(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The distinct ``ids`` found in ``sorted_ids`` (sorted, unique), sorted."""
    ids = np.unique(ids)
    at = np.minimum(np.searchsorted(sorted_ids, ids), max(len(sorted_ids) - 1, 0))
    return ids[sorted_ids[at] == ids] if len(sorted_ids) else ids[:0]


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _read_header(fd: int, size: int) -> dict:
    """The header of an index file open on ``fd`` (``size`` bytes), or IndexFileError."""
    if size < TRAILER.size:
        raise IndexFileError("corrupt (not an index file)")
    header_len, magic = TRAILER.unpack(os.pread(fd, TRAILER.size, size - TRAILER.size))
    if magic != MAGIC:
        if os.pread(fd, len(OLD_MAGIC), 0) == OLD_MAGIC:
            raise IndexFileError("stale (file format 1)")
        raise IndexFileError("corrupt (not an index file)")
    start = size - TRAILER.size - header_len
    try:
        if start < 0:
            raise ValueError("header longer than the file")
        header = json.loads(os.pread(fd, header_len, start))
        if header["format"] != FORMAT or header["faiss_bytes"] != start:
            raise ValueError("header does not describe this file")
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexFileError(f"corrupt ({type(exc).__name__})") from None
    return header


def _sha256(fd: int, length: int) -> str:
    digest = hashlib.sha256()
    block = bytearray(_READ_BLOCK)
    offset = 0
    while offset < length:
        got = os.preadv(fd, [memoryview(block)[:min(_READ_BLOCK, length - offset)]], offset)
        if got == 0:
            break
        digest.update(memoryview(block)[:got])
        offset += got
    return digest.hexdigest()


def _open_file(path: Path) -> int:
    """A read-only descriptor of the index file, or IndexFileError saying why there is none."""
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise IndexFileError("missing") from None
    except OSError as exc:
        raise IndexFileError(f"unreadable ({exc.strerror})") from None


def file_header(path: Path) -> dict:
    """The header of the index file at ``path`` (its checksum not verified), or IndexFileError."""
    fd = _open_file(path)
    try:
        return _read_header(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


class VectorIndex:
    """Sighting vectors of one model version, searchable by inner product, persisted at ``path``.

    ``index`` is the FAISS index (memory-mapped from the file when ``mapped``); ``delta`` and
    ``removed`` hold what changed since, for a mapped index (module notes)."""

    _held: ClassVar[dict[tuple[Path, str, int], VectorIndex]] = {}
    _held_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path, model_version: str, dim: int, index: faiss.Index,
                 ids: np.ndarray, flat_limit: int = FLAT_LIMIT, *, through: int = 0,
                 deletions_seen: int = 0, mapped: bool = False) -> None:
        self.path = Path(path)
        self.model_version = model_version
        self.dim = dim
        self.index = index
        self.base_ids = np.sort(np.asarray(ids, dtype=np.int64))  # every id ``index`` holds
        self.flat_limit = flat_limit
        self.through = through
        self.deletions_seen = deletions_seen
        self.mapped = mapped
        self.delta: faiss.Index | None = None
        self.delta_ids = np.zeros(0, np.int64)
        self.removed = np.zeros(0, np.int64)  # sorted: ids of ``index`` deleted since it was mapped
        self.file_stamp: tuple[int, int, int] | None = None
        self.status = "new"  # what the last open/sync did, for logs and tests
        self._lock = threading.RLock()
        self._newer: VectorIndex | None = None  # a newer file, mapped in the background
        self._mapping_stamp: tuple[int, int, int] | None = None  # the file being (or last) mapped so
        self._prepared = threading.Event()

    # ------------------------------------------------------------ open, load, save

    @classmethod
    def open(cls, db: Database, path: Path | str, model_version: str, dim: int, *,
             flat_limit: int = FLAT_LIMIT, mapped: bool = True) -> VectorIndex:
        """The index for ``model_version``, current with the database (see the module notes);
        ``mapped`` False reads it into memory instead (to change and save it)."""
        path = Path(path)
        try:
            loaded = cls._load(path, model_version, dim, flat_limit, mapped)
        except IndexFileError as exc:
            return cls._rebuilt(db, path, model_version, dim, flat_limit, mapped, str(exc))
        loaded.sync(db)
        kind = Plan.for_size(loaded.count, flat_limit).kind
        if kind != _kind_of(loaded.index):
            reason = f"stale ({_kind_of(loaded.index)} index for {loaded.count} vectors)"
            return cls._rebuilt(db, path, model_version, dim, flat_limit, mapped, reason)
        return loaded

    @classmethod
    def _rebuilt(cls, db: Database, path: Path, model_version: str, dim: int, flat_limit: int,
                 mapped: bool, reason: str) -> VectorIndex:
        index = cls(path, model_version, dim, new_index("flat", dim, np.zeros((0, dim), np.float32)),
                    np.zeros(0, np.int64), flat_limit)
        index.rebuild(db, reason=reason)
        if not mapped:
            return index
        # Map what was just written, so the built copy's memory is given back.
        mapped_index = cls._load(path, model_version, dim, flat_limit, mapped=True)
        mapped_index.status = index.status
        return mapped_index

    @classmethod
    def for_process(cls, db: Database, path: Path | str, model_version: str, dim: int, *,
                    flat_limit: int = FLAT_LIMIT) -> VectorIndex:
        """The index this process holds for ``path`` and ``model_version``: opened (mapped) on
        the first call, then only synced, so a running server never re-reads the file for a
        search (it maps a newer one that ``compact`` or ``refresh`` wrote)."""
        key = (Path(path).resolve(), model_version, dim)
        with cls._held_lock:
            held = cls._held.get(key)
            if held is None:
                held = cls._held[key] = cls.open(db, path, model_version, dim, flat_limit=flat_limit)
                return held
        held.sync(db)
        return held

    @classmethod
    def refresh(cls, db: Database, path: Path | str, *,
                flat_limit: int = FLAT_LIMIT) -> VectorIndex | None:
        """Rewrite an existing index file in step with the database without loading a model:
        after an opt-out or an erasure, so deleted vectors leave the file at once.  A file that
        cannot be read is deleted (it is only a cache; the next search rebuilds it)."""
        path = Path(path)
        try:
            header = file_header(path)
        except IndexFileError:
            path.unlink(missing_ok=True)
            return None
        return cls.open(db, path, header["model_version"], header["dim"], flat_limit=flat_limit,
                        mapped=False).saved_if_changed()

    @classmethod
    def compact(cls, db: Database, path: Path | str, model_version: str, dim: int, *,
                flat_limit: int = FLAT_LIMIT) -> VectorIndex | None:
        """The worker's periodic upkeep: rewrite the file when it lags the database by more than
        ``COMPACT_AT`` changes (or ``COMPACT_SHARE`` of it), or is missing, stale or of the wrong
        kind; prune the deletion log.  Cheap when there is nothing to do: the file's header and
        two counts, no vector read.  Returns the rewritten index, or None."""
        path = Path(path)
        with write_transaction(db):
            db.execute("DELETE FROM sighting_deletions WHERE deleted < julianday('now') - ?",
                       [DELETION_LOG_DAYS])
        try:
            header = file_header(path)
            if (header["model_version"], header["dim"]) != (model_version, dim):
                raise IndexFileError("stale (another model)")
        except IndexFileError:
            return cls.open(db, path, model_version, dim, flat_limit=flat_limit, mapped=False)
        marks = _watermarks(db)
        added = db.execute("SELECT count(*) FROM sightings WHERE id > ? AND model_version = ?",
                           [header["through"], model_version]).fetchone()[0]
        deleted = db.execute("SELECT count(*) FROM sighting_deletions WHERE seq > ?",
                             [header["deletions_seen"]]).fetchone()[0]
        count = header["count"] + added - deleted
        due = max(COMPACT_AT, int(COMPACT_SHARE * header["count"]))
        if (added + deleted < due and not _log_misses(marks, header["deletions_seen"])
                and marks.through >= header["through"]
                and Plan.for_size(count, flat_limit).kind == header["kind"]):
            return None
        return cls.open(db, path, model_version, dim, flat_limit=flat_limit,
                        mapped=False).saved_if_changed()

    def saved_if_changed(self) -> VectorIndex:
        """Write the file if the last open changed anything (a rebuild has written it already)."""
        if self.status.startswith("synced"):
            self.save()
        return self

    @classmethod
    def _load(cls, path: Path, model_version: str, dim: int, flat_limit: int,
              mapped: bool) -> VectorIndex:
        fd = _open_file(path)
        try:
            stat = os.fstat(fd)
            header = _read_header(fd, stat.st_size)
            if _sha256(fd, header["faiss_bytes"]) != header["sha256"]:
                raise IndexFileError("corrupt (checksum mismatch)")
            if header["model_version"] != model_version:
                raise IndexFileError(f"stale (model version {header['model_version']}, now {model_version})")
            try:
                # Through this descriptor, so what is mapped is the very file just verified.
                index = faiss.read_index(f"/proc/self/fd/{fd}", faiss.IO_FLAG_MMAP_IFC if mapped else 0)
            except RuntimeError:
                raise IndexFileError("corrupt (FAISS data)") from None
        finally:
            os.close(fd)
        if header["dim"] != dim or index.d != dim:
            raise IndexFileError(f"stale (dimension {index.d}, now {dim})")
        if not isinstance(index, faiss.IndexIDMap2) or index.ntotal != header["count"]:
            raise IndexFileError("corrupt (count does not match its header)")
        loaded = cls(path, model_version, dim, index, faiss.vector_to_array(index.id_map), flat_limit,
                     through=header["through"], deletions_seen=header["deletions_seen"], mapped=mapped)
        loaded.file_stamp = _stamp(stat)
        loaded.status = "loaded"
        return loaded

    def save(self) -> None:
        """Write the index atomically: a reader sees the old file or the new one, never half."""
        with self._lock:
            if self.mapped:
                raise RuntimeError("a mapped index is saved by compact or refresh, which read it whole")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            try:
                os.close(fd)
                faiss.write_index(self.index, tmp)
                with open(tmp, "r+b") as fh:
                    faiss_bytes = os.fstat(fh.fileno()).st_size
                    header = json.dumps({
                        "format": FORMAT, "model_version": self.model_version, "dim": self.dim,
                        "count": int(self.index.ntotal), "kind": _kind_of(self.index),
                        "through": self.through, "deletions_seen": self.deletions_seen,
                        "faiss_bytes": faiss_bytes, "sha256": _sha256(fh.fileno(), faiss_bytes),
                    }).encode()
                    fh.seek(faiss_bytes)
                    fh.write(header + TRAILER.pack(len(header), MAGIC))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
                self.file_stamp = _stamp(os.stat(self.path))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    # ------------------------------------------------------------ keeping up with SQLite

    def rebuild(self, db: Database, reason: str = "requested") -> None:
        """Build a fresh index from every vector of this model version in SQLite, then save it.
        Reads only: no write transaction is held, so writers go on meanwhile (what they do is
        picked up by the next sync, through the watermarks read first)."""
        with self._lock:
            marks = _watermarks(db)
            count = storage.count_sightings(db, self.model_version)
            plan = Plan.for_size(count, self.flat_limit)
            sample = (self._training_sample(db, SQ8_SAMPLE) if plan.kind == "sq8"
                      else np.zeros((0, self.dim), np.float32))
            index = new_index(plan.kind, self.dim, sample)
            parts = []
            for ids, vectors in storage.sighting_vectors(db, self.model_version, until_id=marks.through):
                self._check_dim(vectors)
                index.add_with_ids(vectors, ids)
                parts.append(ids)
            self.index, self.mapped = index, False
            self.base_ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            self.delta, self.delta_ids, self.removed = None, np.zeros(0, np.int64), np.zeros(0, np.int64)
            self.through, self.deletions_seen = marks.through, marks.deletions
            self.status = f"rebuilt: {reason}"
            log.info("index of %s rebuilt (%s): %d vectors", self.model_version, reason, len(self.base_ids))
            self.save()

    def _training_sample(self, db: Database, size: int) -> np.ndarray:
        all_ids = np.array([r[0] for r in db.execute(
            "SELECT id FROM sightings WHERE model_version = ?", [self.model_version])], np.int64)
        chosen = np.sort(np.random.default_rng(0).choice(all_ids, min(size, len(all_ids)), replace=False))
        rows = []
        for start in range(0, len(chosen), 500):
            chunk = [int(i) for i in chosen[start:start + 500]]
            rows += [storage.blob_to_vector(r[0]) for r in db.execute(
                f"SELECT vector FROM sightings WHERE id IN ({', '.join('?' * len(chunk))})", chunk)]
        return np.vstack(rows)

    def _check_dim(self, vectors: np.ndarray) -> None:
        if vectors.shape[1] != self.dim:
            raise ValueError(f"stored vectors of {self.model_version} have {vectors.shape[1]} "
                             f"dimensions, the model gives {self.dim}")

    def sync(self, db: Database) -> None:
        """Add the sightings stored since ``through``, drop those deleted since ``deletions_seen``
        (module notes); first map the file again if compact or refresh rewrote it."""
        with self._lock:
            if self.mapped:
                self._map_newer_file()
            marks = _watermarks(db)
            if marks.through < self.through or marks.deletions < self.deletions_seen:
                # The database is older than the index (a restore): nothing held can be trusted.
                mapped = self.mapped
                self.rebuild(db, reason="stale (the database is older than the index)")
                if mapped:
                    self._map_newer_file(force=True)
                return
            if _log_misses(marks, self.deletions_seen):
                removed = self._reconcile(db)
            else:
                removed = self._remove(np.array([r[0] for r in db.execute(
                    "SELECT sighting_id FROM sighting_deletions WHERE seq > ? AND seq <= ?",
                    [self.deletions_seen, marks.deletions])], np.int64))
            added = 0
            for ids, vectors in storage.sighting_vectors(db, self.model_version, after_id=self.through,
                                                         until_id=marks.through):
                self._check_dim(vectors)
                self._add(ids, vectors)
                added += len(ids)
            self.through, self.deletions_seen = marks.through, marks.deletions
            if added or removed:
                self.status = f"synced: +{added} -{removed}"
            elif self.status.startswith("synced"):
                self.status = "current"

    def _map_newer_file(self, force: bool = False) -> None:
        """Swap in a newer file (that ``compact`` or ``refresh`` wrote) once it is mapped, dropping
        side index and removed set (its watermarks say where this sync starts).  Verifying a file
        reads all of it (a second or two at a million), so that happens on a background thread,
        never in a search; until then, what is held stays correct.  ``force`` maps it now."""
        if self._newer is not None and not force:
            newer, self._newer = self._newer, None
        else:
            try:
                stamp = _stamp(os.stat(self.path))
            except FileNotFoundError:
                return  # deleted (a restore is under way): keep what is held, it stays correct
            if not force:
                if stamp != self.file_stamp and stamp != self._mapping_stamp:
                    self._mapping_stamp = stamp
                    threading.Thread(target=self._prepare_newer, name="map-index", daemon=True).start()
                return
            try:
                newer = self._load(self.path, self.model_version, self.dim, self.flat_limit, mapped=True)
            except IndexFileError as exc:
                log.warning("index file %s cannot be used (%s); keeping the one held", self.path, exc)
                return
        self.index, self.base_ids, self.file_stamp = newer.index, newer.base_ids, newer.file_stamp
        self.through, self.deletions_seen, self.mapped = newer.through, newer.deletions_seen, True
        self.delta, self.delta_ids, self.removed = None, np.zeros(0, np.int64), np.zeros(0, np.int64)

    def _prepare_newer(self) -> None:
        try:
            newer = self._load(self.path, self.model_version, self.dim, self.flat_limit, mapped=True)
        except IndexFileError as exc:
            log.warning("index file %s was rewritten but cannot be used (%s); keeping the one held",
                        self.path, exc)
            newer = None
        with self._lock:
            self._newer = newer
        self._prepared.set()

    def newer_file_ready(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for a newer file being mapped in the background;
        whether one is ready for the next sync to swap in."""
        self._prepared.wait(timeout)
        self._prepared.clear()
        with self._lock:
            return self._newer is not None

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not self.mapped:
            self.index.add_with_ids(vectors, ids)
            self.base_ids = np.concatenate([self.base_ids, ids])
            return
        if self.delta is None:
            self.delta = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self.delta.add_with_ids(vectors, ids)
        self.delta_ids = np.concatenate([self.delta_ids, ids])

    def _remove(self, ids: np.ndarray) -> int:
        """Drop these sighting ids (those the index does not hold are ignored); how many went.
        Membership by binary search: a sync deletes a few ids from an index of a million."""
        if not len(ids):
            return 0
        in_base, in_delta = _members(self.base_ids, ids), _members(self.delta_ids, ids)
        if len(in_delta):
            assert self.delta is not None
            self.delta.remove_ids(faiss.IDSelectorBatch(in_delta))
            self.delta_ids = np.setdiff1d(self.delta_ids, in_delta, assume_unique=True)
        if self.mapped:
            fresh = np.setdiff1d(in_base, _members(self.removed, in_base), assume_unique=True)
            self.removed = np.union1d(self.removed, fresh)
            return len(fresh) + len(in_delta)
        if len(in_base):
            self.index.remove_ids(faiss.IDSelectorBatch(in_base))
            self.base_ids = np.setdiff1d(self.base_ids, in_base, assume_unique=True)
        return len(in_base) + len(in_delta)

    def _reconcile(self, db: Database) -> int:
        """The deletion log no longer reaches back to ``deletions_seen``: drop every held id that
        is no longer stored (one read of every id of this model)."""
        present = np.array([r[0] for r in db.execute(
            "SELECT id FROM sightings WHERE model_version = ? AND id <= ?",
            [self.model_version, self.through])], np.int64)
        return self._remove(np.setdiff1d(self.ids, present, assume_unique=True))

    # ------------------------------------------------------------ searching

    @property
    def ids(self) -> np.ndarray:
        """Every sighting id searchable now, sorted."""
        return np.union1d(np.setdiff1d(self.base_ids, self.removed, assume_unique=True), self.delta_ids)

    @property
    def count(self) -> int:
        return len(self.base_ids) - len(self.removed) + len(self.delta_ids)

    def search(self, queries: np.ndarray, k: int,
               allowed_ids: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best sightings for each query row, by inner product (cosine for unit
        vectors).  With ``allowed_ids``, only those sightings are scored.  Returns
        ``(scores (q, k) float32, ids (q, k) int64)``, best first, padded with id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have {queries.shape[1]} dimensions, the index {self.dim}")
        empty = (np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64))
        with self._lock:
            selector: faiss.IDSelector | None = None
            if allowed_ids is not None:
                allowed = np.fromiter(allowed_ids, dtype=np.int64)
                if len(self.removed):
                    allowed = np.setdiff1d(allowed, self.removed)
                if len(allowed) == 0:
                    return empty
                selector = faiss.IDSelectorBatch(allowed)
            elif len(self.removed):
                selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(self.removed))
            params = None if selector is None else faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
            parts = [index.search(queries, k, params=params)
                     for index in (self.index, self.delta) if index is not None and index.ntotal]
        if not parts:
            return empty
        scores = np.concatenate([s for s, _ in parts], axis=1)
        ids = np.concatenate([i for _, i in parts], axis=1)
        scores[ids < 0] = -np.inf
        if len(parts) > 1:
            best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            scores, ids = np.take_along_axis(scores, best, 1), np.take_along_axis(ids, best, 1)
        return scores, ids
