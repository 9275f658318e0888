"""A camera owner's own cameras, clips and sightings: every function takes the acting user and
refuses anything that is not theirs.

"Not yours" and "does not exist" are one answer (NotFound), so nobody can probe which camera,
clip or sighting ids exist.  Opting out and deleting a camera bring the FAISS index file in step
at once, so no deleted vector stays searchable.
"""

from __future__ import annotations

from pathlib import Path

from sqlite_utils import Database

from search_party.errors import NotFound, UserError
from search_party.search.geofence import parse_point
from search_party.store import storage
from search_party.store.db import write_transaction
from search_party.store.storage import Camera, Clip, Sighting
from search_party.store.vector_index import VectorIndex

MAX_CAMERA_NAME = 60
MAX_RETENTION_DAYS = 365


def owned_camera(db: Database, camera_id: int, user_id: int) -> Camera:
    try:
        camera = storage.get_camera(db, camera_id)
    except NotFound:
        camera = None
    if camera is None or camera.owner_id != user_id:
        raise NotFound(f"camera {camera_id} does not exist or is not yours")
    return camera


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


def register_camera(db: Database, owner_id: int, *, lat: object, lon: object, name: str = "",
                    retention_days: object = 30) -> Camera:
    """A new camera at a validated place, opted OUT until its owner opts it in."""
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
    return storage.add_camera(db, owner_id, point.lat, point.lon, retention_days=days, name=name)


def opt_in(db: Database, camera_id: int, user_id: int) -> Camera:
    owned_camera(db, camera_id, user_id)
    return storage.opt_in(db, camera_id)


def set_paused(db: Database, camera_id: int, user_id: int, paused: bool) -> Camera:
    camera = owned_camera(db, camera_id, user_id)
    if paused and not camera.opted_in:
        raise UserError("this camera is not opted in, so there is nothing to pause")
    return storage.set_paused(db, camera_id, paused)


def opt_out(db: Database, camera_id: int, user_id: int, index_path: Path | str) -> int:
    """Withdraw consent: the camera's clips, sightings and vectors are deleted now (index file
    included).  Returns how many sightings were deleted."""
    owned_camera(db, camera_id, user_id)
    deleted = storage.opt_out(db, camera_id)
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


def cameras_of(db: Database, user_id: int) -> list[Camera]:
    return storage.list_cameras(db, owner_id=user_id)


def clips_of(db: Database, camera_id: int, user_id: int) -> list[Clip]:
    """The camera's clips, newest first."""
    owned_camera(db, camera_id, user_id)
    return list(reversed(storage.list_clips(db, camera_id=camera_id)))


def sightings_of_clip(db: Database, clip_id: int, user_id: int) -> list[Sighting]:
    owned_clip(db, clip_id, user_id)
    return storage.list_sightings(db, clip_id=clip_id)
