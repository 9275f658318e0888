"""Cameras: registering one at a place, its owner's explicit opt-in (off by default, per camera,
revocable), pausing, opting out and deleting, and everything a camera's owner may read of it.

Every action on a camera takes the acting user and refuses anything that is not theirs; "not
yours" and "does not exist" are one answer (NotFound), so nobody can probe which camera, clip or
sighting ids exist.  (The operator's CLI acts as a camera's owner.)  Opting out deletes the
camera's clips, sightings, thumbnails and vectors in one transaction, and deleting a camera removes
everything from it; both bring the FAISS index file in step at once, so no deleted vector stays
searchable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from search_party.community.accounts import get_account
from search_party.community.filming_time import EARLIEST_FILMED, MAX_FUTURE, check_time_zone
from search_party.errors import NotFound, UserError
from search_party.search.geofence import parse_point
from search_party.store import storage
from search_party.store.db import from_db_time, insert_row, to_db_time, utcnow, write_transaction
from search_party.store.storage import Clip, Sighting, time_or_none
from search_party.store.vector_index import VectorIndex

MAX_CAMERA_NAME = 60
MAX_RETENTION_DAYS = 365


@dataclass(frozen=True)
class Camera:
    id: int
    owner_id: int
    name: str
    lat: float
    lon: float
    opted_in: bool
    opted_in_at: datetime | None
    paused: bool
    retention_days: int
    created: datetime
    time_zone: str | None = None  # IANA name of the camera's clock, for times in its file names


def _camera(row: dict) -> Camera:
    return Camera(
        id=row["id"], owner_id=row["owner_id"], name=row["name"], lat=row["lat"], lon=row["lon"],
        opted_in=bool(row["opted_in"]), opted_in_at=time_or_none(row["opted_in_at"]),
        paused=bool(row["paused"]), retention_days=row["retention_days"],
        created=from_db_time(row["created"]), time_zone=row["time_zone"],
    )


def get_camera(db: Database, camera_id: int) -> Camera:
    rows = list(db.query("SELECT * FROM cameras WHERE id = ?", [camera_id]))
    if not rows:
        raise NotFound(f"camera {camera_id} does not exist")
    return _camera(rows[0])


def list_cameras(db: Database) -> list[Camera]:
    """Every camera (for the operator)."""
    return [_camera(r) for r in db.query("SELECT * FROM cameras ORDER BY id")]


def cameras_of(db: Database, user_id: int) -> list[Camera]:
    return [_camera(r) for r in db.query("SELECT * FROM cameras WHERE owner_id = ? ORDER BY id", [user_id])]


def owned_camera(db: Database, camera_id: int, user_id: int) -> Camera:
    try:
        camera = get_camera(db, camera_id)
    except NotFound:
        camera = None
    if camera is None or camera.owner_id != user_id:
        raise NotFound(f"camera {camera_id} does not exist or is not yours")
    return camera


def register_camera(db: Database, owner_id: int, *, lat: object, lon: object, name: str = "",
                    retention_days: object = 30) -> Camera:
    """A new camera at a validated place, opted OUT: nothing from it is processed until its owner
    opts it in."""
    point = parse_point(lat, lon)
    name = " ".join(str(name).split())
    if len(name) > MAX_CAMERA_NAME:
        raise UserError(f"a camera name may have at most {MAX_CAMERA_NAME} characters")
    try:
        days = int(str(retention_days).strip())
    except ValueError:
        raise UserError(f"keep sightings for a whole number of days (1 to {MAX_RETENTION_DAYS})") from None
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise UserError(f"keep sightings for 1 to {MAX_RETENTION_DAYS} days, not {days}")
    get_account(db, owner_id)
    with write_transaction(db):
        camera_id = insert_row(db, "cameras", {
            "owner_id": owner_id, "name": name, "lat": point.lat, "lon": point.lon, "opted_in": 0,
            "opted_in_at": None, "paused": 0, "retention_days": days,
            "created": to_db_time(utcnow()),
        })
    return get_camera(db, camera_id)


def opt_in(db: Database, camera_id: int, user_id: int) -> Camera:
    """The owner's explicit consent for this camera; the time it was given is kept."""
    owned_camera(db, camera_id, user_id)
    with write_transaction(db):
        db.execute("UPDATE cameras SET opted_in = 1, opted_in_at = ? WHERE id = ? AND opted_in = 0",
                   [to_db_time(utcnow()), camera_id])
    return get_camera(db, camera_id)


def set_time_zone(db: Database, camera_id: int, user_id: int, time_zone: str | None) -> Camera:
    """The zone of the camera's clock (an IANA name such as Europe/Berlin; None: not known), used
    to read the local times camera makers put in file names."""
    owned_camera(db, camera_id, user_id)
    zone = check_time_zone(time_zone)
    with write_transaction(db):
        db.execute("UPDATE cameras SET time_zone = ? WHERE id = ?", [zone, camera_id])
    return get_camera(db, camera_id)


def set_paused(db: Database, camera_id: int, user_id: int, paused: bool) -> Camera:
    camera = owned_camera(db, camera_id, user_id)
    if paused and not camera.opted_in:
        raise UserError("this camera is not opted in, so there is nothing to pause")
    with write_transaction(db):
        db.execute("UPDATE cameras SET paused = ? WHERE id = ?", [int(paused), camera_id])
    return get_camera(db, camera_id)


def opt_out(db: Database, camera_id: int, user_id: int, index_path: Path | str) -> int:
    """Withdraw consent: the camera's clips, sightings, thumbnails and vectors are deleted now, in
    one transaction (by cascade), and the index file follows.  Returns how many sightings were
    deleted."""
    owned_camera(db, camera_id, user_id)
    with write_transaction(db):
        deleted = db.execute("SELECT count(*) FROM sightings WHERE camera_id = ?", [camera_id]).fetchone()[0]
        db.execute("DELETE FROM clips WHERE camera_id = ?", [camera_id])
        db.execute("UPDATE cameras SET opted_in = 0, opted_in_at = NULL WHERE id = ?", [camera_id])
    VectorIndex.refresh(db, index_path)
    return deleted


def delete_camera(db: Database, camera_id: int, user_id: int, index_path: Path | str) -> int:
    """Remove the camera and everything from it (clips, sightings, vectors, requests, tokens,
    activity log).  Returns how many sightings were deleted."""
    owned_camera(db, camera_id, user_id)
    with write_transaction(db):
        deleted = db.execute("SELECT count(*) FROM sightings WHERE camera_id = ?", [camera_id]).fetchone()[0]
        db.execute("DELETE FROM cameras WHERE id = ?", [camera_id])
    if deleted:
        VectorIndex.refresh(db, index_path)
    return deleted


# ---------------------------------------------------------------- what the owner reads


def owned_clip(db: Database, clip_id: int, user_id: int) -> Clip:
    try:
        clip = storage.get_clip(db, clip_id)
        owned_camera(db, clip.camera_id, user_id)
    except NotFound:
        raise NotFound(f"clip {clip_id} does not exist or is not yours") from None
    return clip


def owned_sighting(db: Database, sighting_id: int, user_id: int) -> Sighting:
    try:
        sighting = storage.get_sighting(db, sighting_id)
        owned_camera(db, sighting.camera_id, user_id)
    except NotFound:
        raise NotFound(f"sighting {sighting_id} does not exist or is not yours") from None
    return sighting


def sighting_image(db: Database, sighting_id: int, user_id: int) -> bytes:
    """The owner's own sighting crop (persons were blurred at ingest)."""
    owned_sighting(db, sighting_id, user_id)
    return storage.thumbnail(db, sighting_id)


def clips_of(db: Database, camera_id: int, user_id: int) -> list[Clip]:
    """The camera's clips, newest first."""
    owned_camera(db, camera_id, user_id)
    return list(reversed(storage.list_clips(db, camera_id=camera_id)))


def correct_clip_start(db: Database, clip_id: int, user_id: int, start: datetime) -> Clip:
    """The camera's owner states when the clip was filmed (a time with its UTC offset); its
    sightings' times move with it.  Wins over every other source, for a queued or a done clip."""
    clip = owned_clip(db, clip_id, user_id)
    if start.tzinfo is None:
        raise UserError("the time needs its UTC offset, e.g. 2025-06-01T08:00:00+02:00")
    if not EARLIEST_FILMED <= start <= utcnow() + MAX_FUTURE:
        raise UserError(f"{start:%Y-%m-%d %H:%M} is not a time this clip can have been filmed")
    storage.set_clip_start(db, clip.id, start, "neighbour")
    return storage.get_clip(db, clip.id)


def sightings_of_clip(db: Database, clip_id: int, user_id: int) -> list[Sighting]:
    owned_clip(db, clip_id, user_id)
    return storage.list_sightings(db, clip_id=clip_id)
