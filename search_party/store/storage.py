"""The storage API of ingest's records: clips and their sightings, read and written through
sqlite-utils.  (Accounts, cameras and reports are kept by the community modules that own them.)

Rules this module keeps:
- a clip is registered only for a camera that is opted in and not paused;
- a clip's sightings appear in one transaction together with its ``done`` status, so a crash
  mid-clip leaves nothing visible;
- only the holder of a clip's current claim may finish it (a worker that was presumed dead and
  wakes up later cannot store a second copy);
- vectors are little-endian float32 blobs, one per sighting plus one per kept crop.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlite_utils import Database

from search_party.errors import NotFound, UserError
from search_party.store.clip_results import ClipResult, IngestStats
from search_party.store.db import from_db_time, insert_row, to_db_time, utcnow, write_transaction

CLIP_STATUSES = ("queued", "processing", "done", "failed")
Box = tuple[float, float, float, float]


class ClaimLost(RuntimeError):
    """The clip is no longer processing under this claim: it was re-queued, failed, or deleted by
    an opt-out while the worker was busy, so the worker's result must be thrown away."""


# ---------------------------------------------------------------- vectors


def vector_to_blob(vector: np.ndarray) -> bytes:
    array = np.asarray(vector, dtype="<f4")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"a vector must be one non-empty row, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("a vector holds NaN or infinity; refusing to store it")
    return array.tobytes()


def blob_to_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class Clip:
    id: int
    camera_id: int
    sha256: str
    filename: str
    size_bytes: int
    spool_name: str | None
    status: str
    reason: str | None
    attempts: int
    claimed_by: str | None
    start_time: datetime | None
    start_source: str | None  # where start_time came from: search_party.community.filming_time.SOURCES
    sightings_count: int | None
    stats: dict[str, Any] | None
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class Sighting:
    """A stored sighting without its blobs (thumbnail and vectors are read on demand)."""

    id: int
    camera_id: int
    clip_id: int
    label: str  # the likelier species, for display
    p_dog: float  # the species head's P(dog): a search scores the species above a floor
    first_time: datetime
    last_time: datetime
    box: Box
    score: float
    model_version: str
    created: datetime


def time_or_none(text: str | None) -> datetime | None:
    return from_db_time(text) if text else None


def _clip(row: dict) -> Clip:
    return Clip(
        id=row["id"], camera_id=row["camera_id"], sha256=row["sha256"], filename=row["filename"],
        size_bytes=row["size_bytes"], spool_name=row["spool_name"], status=row["status"],
        reason=row["reason"], attempts=row["attempts"], claimed_by=row["claimed_by"],
        start_time=time_or_none(row["start_time"]), start_source=row["start_source"],
        sightings_count=row["sightings_count"],
        stats=json.loads(row["stats"]) if row["stats"] else None,
        created=from_db_time(row["created"]), updated=from_db_time(row["updated"]),
    )


_SIGHTING_COLUMNS = ("id, camera_id, clip_id, label, p_dog, first_time, last_time, box_x1, box_y1, box_x2, "
                     "box_y2, score, model_version, created")


def _sighting(row: dict) -> Sighting:
    return Sighting(
        id=row["id"], camera_id=row["camera_id"], clip_id=row["clip_id"], label=row["label"],
        p_dog=row["p_dog"], first_time=from_db_time(row["first_time"]), last_time=from_db_time(row["last_time"]),
        box=(row["box_x1"], row["box_y1"], row["box_x2"], row["box_y2"]), score=row["score"],
        model_version=row["model_version"], created=from_db_time(row["created"]),
    )


def _one(db: Database, sql: str, params: Sequence, what: str) -> dict:
    rows = list(db.query(sql, params))
    if not rows:
        raise NotFound(f"{what} does not exist")
    return rows[0]


# ---------------------------------------------------------------- clips


def create_clip(db: Database, camera_id: int, sha256: str, filename: str, size_bytes: int, *,
                start_time: datetime | None = None, start_source: str = "given",
                spool: Callable[[int], str] | None = None) -> tuple[Clip, bool]:
    """Register a clip by its content hash.  Returns ``(clip, created)``: ``created`` is False
    when this camera already has a clip with the same content (nothing new is stored).

    ``spool(clip_id)`` is called inside the transaction to move the clip's bytes into place and
    returns the file name kept with the clip; if it fails, no clip is registered."""
    now = to_db_time(utcnow())
    with write_transaction(db):
        camera = db.execute("SELECT opted_in, paused FROM cameras WHERE id = ?", [camera_id]).fetchone()
        if camera is None:
            raise NotFound(f"camera {camera_id} does not exist")
        opted_in, paused = camera
        if not opted_in:
            raise UserError(f"camera {camera_id} is not opted in, so its clips are not processed; "
                            f"its owner can opt it in with `search-party camera opt-in {camera_id}`")
        if paused:
            raise UserError(f"camera {camera_id} is paused; resume it before volunteering clips")
        existing = find_clip(db, camera_id, sha256)
        if existing is not None:
            return existing, False
        clip_id = insert_row(db, "clips", {
            "camera_id": camera_id, "sha256": sha256, "filename": filename,
            "size_bytes": size_bytes, "status": "queued",
            "start_time": to_db_time(start_time) if start_time else None,
            "start_source": start_source if start_time else None,
            "created": now, "updated": now,
        })
        if spool is not None:
            db.execute("UPDATE clips SET spool_name = ? WHERE id = ?", [spool(clip_id), clip_id])
    return get_clip(db, clip_id), True


def get_clip(db: Database, clip_id: int) -> Clip:
    return _clip(_one(db, "SELECT * FROM clips WHERE id = ?", [clip_id], f"clip {clip_id}"))


def find_clip(db: Database, camera_id: int, sha256: str) -> Clip | None:
    rows = list(db.query("SELECT * FROM clips WHERE camera_id = ? AND sha256 = ?", [camera_id, sha256]))
    return _clip(rows[0]) if rows else None


def list_clips(db: Database, camera_id: int | None = None, status: str | None = None) -> list[Clip]:
    where: list[str] = []
    params: list[object] = []
    if camera_id is not None:
        where.append("camera_id = ?")
        params.append(camera_id)
    if status is not None:
        if status not in CLIP_STATUSES:
            raise UserError(f"status {status!r} is not one of {', '.join(CLIP_STATUSES)}")
        where.append("status = ?")
        params.append(status)
    sql = "SELECT * FROM clips" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
    return [_clip(r) for r in db.query(sql, params)]


def claim_clip(db: Database, clip_id: int, claim: str) -> Clip | None:
    """queued -> processing under ``claim`` (one attempt more); None if the clip is not queued
    (already claimed, finished or deleted), so a duplicate task does nothing."""
    now = to_db_time(utcnow())
    with write_transaction(db):
        cursor = db.execute(
            "UPDATE clips SET status = 'processing', attempts = attempts + 1, claimed_by = ?, "
            "claimed_at = ?, updated = ? WHERE id = ? AND status = 'queued'",
            [claim, now, now, clip_id])
        if cursor.rowcount == 0:
            return None
    return get_clip(db, clip_id)


def requeue_clip(db: Database, clip_id: int, claim: str) -> bool:
    """processing -> queued, if ``claim`` still holds it (its worker died)."""
    with write_transaction(db):
        cursor = db.execute(
            "UPDATE clips SET status = 'queued', claimed_by = NULL, claimed_at = NULL, updated = ? "
            "WHERE id = ? AND status = 'processing' AND claimed_by = ?",
            [to_db_time(utcnow()), clip_id, claim])
    return cursor.rowcount == 1


def retry_clip(db: Database, clip_id: int) -> bool:
    """failed -> queued with fresh attempts (the clip was volunteered again)."""
    with write_transaction(db):
        cursor = db.execute(
            "UPDATE clips SET status = 'queued', reason = NULL, attempts = 0, updated = ? "
            "WHERE id = ? AND status = 'failed'", [to_db_time(utcnow()), clip_id])
    return cursor.rowcount == 1


def set_clip_start(db: Database, clip_id: int, start: datetime, source: str) -> None:
    """Set when the clip was filmed, and move its sightings' times by as much, in one transaction
    (a sighting's time is the clip's start plus its offset into the clip)."""
    with write_transaction(db):
        row = db.execute("SELECT start_time FROM clips WHERE id = ?", [clip_id]).fetchone()
        if row is None:
            raise NotFound(f"clip {clip_id} does not exist")
        if row[0]:
            shift = start - from_db_time(row[0])
            for sighting_id, first, last in db.execute(
                    "SELECT id, first_time, last_time FROM sightings WHERE clip_id = ?", [clip_id]).fetchall():
                db.execute("UPDATE sightings SET first_time = ?, last_time = ? WHERE id = ?",
                           [to_db_time(from_db_time(first) + shift), to_db_time(from_db_time(last) + shift),
                            sighting_id])
        db.execute("UPDATE clips SET start_time = ?, start_source = ?, updated = ? WHERE id = ?",
                   [to_db_time(start), source, to_db_time(utcnow()), clip_id])


def set_spool_name(db: Database, clip_id: int, spool_name: str | None) -> None:
    with write_transaction(db):
        db.execute("UPDATE clips SET spool_name = ? WHERE id = ?", [spool_name, clip_id])


def fail_clip(db: Database, clip_id: int, reason: str, claim: str | None = None) -> bool:
    """Mark the clip failed with a reason a person can read.  With ``claim``, only if that claim
    still holds the clip.  A failed clip has no sightings: they are only ever written together
    with the ``done`` status."""
    condition = "id = ? AND status IN ('queued', 'processing')"
    params: list[object] = [clip_id]
    if claim is not None:
        condition, params = "id = ? AND status = 'processing' AND claimed_by = ?", [clip_id, claim]
    with write_transaction(db):
        cursor = db.execute(
            f"UPDATE clips SET status = 'failed', reason = ?, claimed_by = NULL, claimed_at = NULL, "
            f"spool_name = NULL, sightings_count = 0, updated = ? WHERE {condition}",
            [reason, to_db_time(utcnow()), *params])
    return cursor.rowcount == 1


def _stats_json(stats: IngestStats) -> str:
    return json.dumps(dataclasses.asdict(stats), default=str, sort_keys=True)


def save_clip_result(db: Database, clip_id: int, result: ClipResult, claim: str, *,
                     before_commit: Callable[[], None] | None = None) -> list[int]:
    """Store every sighting of a processed clip and mark the clip done, all in ONE transaction:
    readers see either the finished clip with all its sightings or the unfinished clip with none.

    Raises ClaimLost (and stores nothing) if ``claim`` no longer holds the clip.
    ``before_commit`` runs inside the open transaction just before it commits; the worker's
    crash test uses it to be killed at the worst moment.  Returns the new sighting ids."""
    now = to_db_time(utcnow())
    ids: list[int] = []
    with write_transaction(db):
        row = db.execute("SELECT status, claimed_by FROM clips WHERE id = ?", [clip_id]).fetchone()
        if row is None or row[0] != "processing" or row[1] != claim:
            raise ClaimLost(f"clip {clip_id} is no longer processing under claim {claim}")
        camera_id = db.execute("SELECT camera_id FROM clips WHERE id = ?", [clip_id]).fetchone()[0]
        for draft in result.sightings:
            x1, y1, x2, y2 = (float(v) for v in draft.box)
            sighting_id = insert_row(db, "sightings", {
                "camera_id": camera_id, "clip_id": clip_id, "label": draft.label, "p_dog": float(draft.p_dog),
                "first_time": to_db_time(draft.first_time), "last_time": to_db_time(draft.last_time),
                "box_x1": x1, "box_y1": y1, "box_x2": x2, "box_y2": y2,
                "score": float(draft.score), "thumbnail": bytes(draft.thumbnail_jpeg),
                "vector": vector_to_blob(draft.vector), "model_version": draft.model_version,
                "created": now,
            })
            crops = np.asarray(draft.crop_vectors, dtype=np.float32).reshape(-1, np.size(draft.vector))
            db.table("sighting_crops").insert_all(
                {"sighting_id": sighting_id, "vector": vector_to_blob(v)} for v in crops)
            ids.append(sighting_id)
        start = result.start_time
        db.execute(
            "UPDATE clips SET status = 'done', reason = NULL, sightings_count = ?, stats = ?, "
            "start_time = coalesce(?, start_time), start_source = coalesce(?, start_source), "
            "claimed_by = NULL, claimed_at = NULL, spool_name = NULL, updated = ? WHERE id = ?",
            [len(ids), _stats_json(result.stats), to_db_time(start) if start else None,
             result.start_source or None, now, clip_id])
        if before_commit is not None:
            before_commit()
    return ids


# ---------------------------------------------------------------- sightings


def get_sighting(db: Database, sighting_id: int) -> Sighting:
    return _sighting(_one(db, f"SELECT {_SIGHTING_COLUMNS} FROM sightings WHERE id = ?",
                          [sighting_id], f"sighting {sighting_id}"))


def list_sightings(db: Database, *, camera_ids: Iterable[int] | None = None,
                   clip_id: int | None = None, since: datetime | None = None,
                   model_version: str | None = None) -> list[Sighting]:
    """Sightings, oldest first, optionally only from some cameras, one clip, ending at or after
    ``since``, or made by one model version."""
    where: list[str] = []
    params: list[object] = []
    if camera_ids is not None:
        cams = list(camera_ids)
        if not cams:
            return []
        where.append(f"camera_id IN ({', '.join('?' * len(cams))})")
        params.extend(cams)
    if clip_id is not None:
        where.append("clip_id = ?")
        params.append(clip_id)
    if since is not None:
        where.append("last_time >= ?")
        params.append(to_db_time(since))
    if model_version is not None:
        where.append("model_version = ?")
        params.append(model_version)
    sql = (f"SELECT {_SIGHTING_COLUMNS} FROM sightings"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY first_time, id")
    return [_sighting(r) for r in db.query(sql, params)]


def count_sightings(db: Database, model_version: str | None = None) -> int:
    if model_version is None:
        return db.execute("SELECT count(*) FROM sightings").fetchone()[0]
    return db.execute("SELECT count(*) FROM sightings WHERE model_version = ?",
                      [model_version]).fetchone()[0]


def thumbnail(db: Database, sighting_id: int) -> bytes:
    return _one(db, "SELECT thumbnail FROM sightings WHERE id = ?", [sighting_id],
                f"sighting {sighting_id}")["thumbnail"]


def sighting_vectors(db: Database, model_version: str, *, after_id: int = 0, until_id: int | None = None,
                     batch: int = 10_000) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Every stored vector of ``model_version`` with ``after_id`` < id <= ``until_id``, in id
    order, as ``(ids int64 (n,), vectors float32 (n, dim))`` batches (bounded memory at any size)."""
    last = after_id
    until = (1 << 63) - 1 if until_id is None else until_id
    while True:
        rows = db.execute(
            "SELECT id, vector FROM sightings WHERE model_version = ? AND id > ? AND id <= ? "
            "ORDER BY id LIMIT ?", [model_version, last, until, batch]).fetchall()
        if not rows:
            return
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        yield ids, np.vstack([blob_to_vector(r[1]) for r in rows])
        last = int(ids[-1])


def crop_vectors(db: Database, sighting_ids: Iterable[int]) -> dict[int, np.ndarray]:
    """The kept crops' vectors of each sighting: {sighting_id: (k, dim) float32}."""
    wanted = list(sighting_ids)
    out: dict[int, list[np.ndarray]] = {i: [] for i in wanted}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = db.execute(
            f"SELECT sighting_id, vector FROM sighting_crops WHERE sighting_id IN "
            f"({', '.join('?' * len(chunk))}) ORDER BY id", chunk).fetchall()
        for sighting_id, blob in rows:
            out[sighting_id].append(blob_to_vector(blob))
    return {i: np.vstack(v) if v else np.zeros((0, 0), np.float32) for i, v in out.items()}
