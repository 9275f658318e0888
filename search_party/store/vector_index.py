"""The FAISS index of sighting vectors: a cache of SQLite, never the only copy of anything.

``VectorIndex.open`` loads the index file and checks it against the database.  It rebuilds the
whole index from SQLite when the file is missing, corrupt (bad header, checksum or FAISS data) or
stale (made by another model version or for another dimension, or too small or too large for its
index type), and otherwise catches up incrementally: rows added since the file was written are
added, rows deleted since (opt-out, retention, erasure) are removed.  If the counts still
disagree after that, it rebuilds.  Sighting ids never repeat (AUTOINCREMENT), so "id greater than
the largest indexed id" is exactly "new since the file was written".

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
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from sqlite_utils import Database

from search_party.store import storage
from search_party.store.index_kinds import new_index

FLAT_LIMIT = 100_000
MAGIC = b"SPFAISS1"
FORMAT = 1
SQ8_SAMPLE = 20_000  # vectors whose per-dimension range trains the SQ8 index


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


def _read(path: Path) -> tuple[dict, bytes]:
    """The header and body of an index file whose checksum holds, or IndexFileError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexFileError("missing") from None
    except OSError as exc:
        raise IndexFileError(f"unreadable ({exc.strerror})") from None
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise IndexFileError("corrupt (not an index file)")
    (header_len,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start:start + header_len])
        body = data[start + header_len:]
        if header["format"] != FORMAT:
            raise IndexFileError(f"stale (file format {header['format']})")
        if hashlib.sha256(body).hexdigest() != header["sha256"]:
            raise IndexFileError("corrupt (checksum mismatch)")
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexFileError(f"corrupt ({type(exc).__name__})") from None
    return header, body


class VectorIndex:
    """Sighting vectors of one model version, searchable by inner product, persisted at ``path``."""

    def __init__(self, path: Path, model_version: str, dim: int, index: faiss.Index,
                 ids: np.ndarray, flat_limit: int = FLAT_LIMIT) -> None:
        self.path = Path(path)
        self.model_version = model_version
        self.dim = dim
        self.index = index
        self.ids = ids  # sorted int64: every sighting id in the index
        self.flat_limit = flat_limit
        self.status = "new"  # what the last open/sync did, for logs and tests
        self._lock = threading.RLock()

    # ------------------------------------------------------------ open, load, save

    @classmethod
    def open(cls, db: Database, path: Path | str, model_version: str, dim: int, *,
             flat_limit: int = FLAT_LIMIT) -> VectorIndex:
        """The index for ``model_version``, current with the database (see the module notes)."""
        path = Path(path)
        try:
            loaded = cls._load(path, model_version, dim, flat_limit)
        except IndexFileError as exc:
            index = cls(path, model_version, dim, new_index("flat", dim, np.zeros((0, dim), np.float32)),
                        np.zeros(0, np.int64), flat_limit)
            index.rebuild(db, reason=str(exc))
            return index
        loaded.sync(db)
        return loaded

    @classmethod
    def refresh(cls, db: Database, path: Path | str, *,
                flat_limit: int = FLAT_LIMIT) -> VectorIndex | None:
        """Bring an existing index file in step with the database without loading a model: after
        an opt-out or an erasure, so deleted vectors leave the file at once.  A file that cannot
        be read is deleted (it is only a cache; the next search rebuilds it)."""
        path = Path(path)
        try:
            header, _ = _read(path)
        except IndexFileError:
            path.unlink(missing_ok=True)
            return None
        return cls.open(db, path, header["model_version"], header["dim"], flat_limit=flat_limit)

    @classmethod
    def _load(cls, path: Path, model_version: str, dim: int, flat_limit: int) -> VectorIndex:
        header, body = _read(path)
        try:
            count = int(header["count"])
            ids = np.frombuffer(body[:count * 8], dtype="<i8").astype(np.int64)
            index = faiss.deserialize_index(np.frombuffer(body[count * 8:], dtype=np.uint8))
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexFileError(f"corrupt ({type(exc).__name__})") from None
        if header["model_version"] != model_version:
            raise IndexFileError(f"stale (model version {header['model_version']}, now {model_version})")
        if header["dim"] != dim or index.d != dim:
            raise IndexFileError(f"stale (dimension {index.d}, now {dim})")
        if index.ntotal != count or len(ids) != count:
            raise IndexFileError("corrupt (count does not match its header)")
        loaded = cls(path, model_version, dim, index, ids, flat_limit)
        loaded.status = "loaded"
        return loaded

    def save(self) -> None:
        """Write the index atomically: a reader sees the old file or the new one, never half."""
        with self._lock:
            body = self.ids.astype("<i8").tobytes() + faiss.serialize_index(self.index).tobytes()
            header = json.dumps({
                "format": FORMAT, "model_version": self.model_version, "dim": self.dim,
                "count": int(self.index.ntotal), "kind": _kind_of(self.index),
                "sha256": hashlib.sha256(body).hexdigest(),
            }).encode()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(MAGIC + struct.pack("<I", len(header)) + header + body)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    # ------------------------------------------------------------ keeping up with SQLite

    def rebuild(self, db: Database, reason: str = "requested") -> None:
        """Build a fresh index from every vector of this model version in SQLite, then save it."""
        with self._lock:
            count = storage.count_sightings(db, self.model_version)
            plan = Plan.for_size(count, self.flat_limit)
            sample = (self._training_sample(db, SQ8_SAMPLE) if plan.kind == "sq8"
                      else np.zeros((0, self.dim), np.float32))
            index = new_index(plan.kind, self.dim, sample)
            parts = []
            for ids, vectors in storage.sighting_vectors(db, self.model_version):
                self._check_dim(vectors)
                index.add_with_ids(vectors, ids)
                parts.append(ids)
            self.index = index
            self.ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            self.status = f"rebuilt: {reason}"
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
        """Add sightings stored since the index was written, drop deleted ones, save if anything
        changed; rebuild if the counts still disagree or the index outgrew its type."""
        with self._lock:
            added = removed = 0
            last = int(self.ids[-1]) if len(self.ids) else 0
            for ids, vectors in storage.sighting_vectors(db, self.model_version, after_id=last):
                self._check_dim(vectors)
                self.index.add_with_ids(vectors, ids)
                self.ids = np.concatenate([self.ids, ids])
                added += len(ids)
            count = storage.count_sightings(db, self.model_version)
            if count != len(self.ids):
                present = np.array([r[0] for r in db.execute(
                    "SELECT id FROM sightings WHERE model_version = ? ORDER BY id",
                    [self.model_version])], np.int64)
                gone = np.setdiff1d(self.ids, present, assume_unique=True)
                if len(gone):
                    self.index.remove_ids(faiss.IDSelectorBatch(gone))
                    self.ids = np.setdiff1d(self.ids, gone, assume_unique=True)
                    removed = len(gone)
            if count != len(self.ids) or self.index.ntotal != count:
                self.rebuild(db, reason=f"stale (count {self.index.ntotal}, database {count})")
                return
            if Plan.for_size(count, self.flat_limit).kind != _kind_of(self.index):
                self.rebuild(db, reason=f"stale ({_kind_of(self.index)} index for {count} vectors)")
                return
            if added or removed:
                self.status = f"synced: +{added} -{removed}"
                self.save()
            elif self.status.startswith("synced"):
                self.status = "current"

    # ------------------------------------------------------------ searching

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int,
               allowed_ids: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best sightings for each query row, by inner product (cosine for unit
        vectors).  With ``allowed_ids``, only those sightings are scored.  Returns
        ``(scores (q, k) float32, ids (q, k) int64)``, best first, padded with id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have {queries.shape[1]} dimensions, the index {self.dim}")
        empty = (np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64))
        params = None
        with self._lock:
            if allowed_ids is not None:
                allowed = np.fromiter(allowed_ids, dtype=np.int64)
                if len(allowed) == 0:
                    return empty
                params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))  # type: ignore[call-arg]
            if self.index.ntotal == 0:
                return empty
            scores, ids = self.index.search(queries, k, params=params)
        scores[ids < 0] = -np.inf
        return scores, ids
