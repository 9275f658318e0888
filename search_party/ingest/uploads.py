"""Clips volunteered over the network (the web page, the JSON API, the camera-side uploader).

An upload arrives as a stream with the sender's file name.  It is written to a private folder
under ``data_dir/uploads``, then registered exactly like a clip volunteered from the shell
(search_party.ingest.spool.register_clip: hashed, spooled, deduplicated by content per camera) and
queued for the worker.  The same bytes sent twice, by a double submit or an uploader that lost its
state, are one clip: the second send is answered with the first clip and nothing is queued.

What the disk can take is checked before anything is read (``check_room``, called by the web
routes with the request's length): a camera may send SEARCH_PARTY_CAMERA_DAILY_UPLOAD_MB in any 24
hours (checked again inside the registering transaction, so parallel uploads cannot slip past it;
429), and no upload may leave less free disk than SEARCH_PARTY_MIN_FREE_DISK_MB (507).  A request
holds a lease on its private folder until its clip is registered, so the sweep of folders left by
dead requests never takes a live one, however long its upload runs.

The sender may say when the clip was filmed (``start``: an agent that knows it), give the file's
modification time (``modified``) and its own time zone (``time_zone``, for the local times in
camera file names); search_party.community.filming_time says which source wins.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO

from sqlite_utils import Database

from search_party import disk_space
from search_party.clip_types import VIDEO_EXTENSIONS
from search_party.community import cameras, limits
from search_party.community.cameras import owned_camera
from search_party.config import Settings
from search_party.errors import InsufficientStorage, NotFound, UserError
from search_party.ingest import file_leases
from search_party.ingest.spool import Submission, register_clip
from search_party.store import storage
from search_party.store.db import utcnow

MAX_NAME_CHARS = 120
STALE_UPLOAD_S = 3600  # an upload folder older than this belongs to a request that died
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class ClipStatus:
    """What the camera owner (or their uploader) is told about one clip."""

    id: int
    camera_id: int
    filename: str
    status: str  # queued | processing | done | failed
    reason: str | None
    sightings: int | None
    duplicate: bool
    message: str
    start_time: datetime | None = None  # when it was filmed, UTC, as far as known yet
    start_source: str | None = None  # where that came from (search_party.community.filming_time)

    def as_dict(self) -> dict:
        return {"id": self.id, "camera_id": self.camera_id, "filename": self.filename,
                "status": self.status, "reason": self.reason, "sightings": self.sightings,
                "duplicate": self.duplicate, "message": self.message,
                "start_time": self.start_time.isoformat() if self.start_time else None,
                "start_source": self.start_source}


def describe(clip: storage.Clip, duplicate: bool = False) -> ClipStatus:
    if clip.status == "done":
        n = clip.sightings_count or 0
        message = (f"done: {n} animal{'s' if n != 1 else ''} found" if n
                   else "done: no dog or cat in this clip")
    elif clip.status == "failed":
        message = f"failed: {clip.reason}"
    elif clip.status == "processing":
        message = "processing: looking for dogs and cats"
    else:
        message = "queued: waiting for the worker"
    if duplicate:
        message = f"already uploaded as clip {clip.id} ({message})"
    return ClipStatus(clip.id, clip.camera_id, clip.filename, clip.status, clip.reason,
                      clip.sightings_count, duplicate, message, clip.start_time, clip.start_source)


def safe_clip_name(filename: str | None) -> str:
    """The sender's file name reduced to a safe single path component with a video extension;
    anything else is refused with the list of what is accepted."""
    name = unicodedata.normalize("NFKC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    stem, ext = os.path.splitext(name)
    if ext.lower() not in VIDEO_EXTENSIONS:
        shown = (filename or "")[:60]
        raise UserError(f"{shown!r} is not a video clip this server reads; send one of "
                        f"{', '.join(VIDEO_EXTENSIONS)}")
    stem = stem[:MAX_NAME_CHARS - len(ext)] or "clip"
    return stem + ext.lower()


def _sweep_stale(uploads: Path) -> None:
    """Remove upload folders a dead request left.  A request holds its folder's lease until the
    clip is registered, however long the upload takes (a growing file does not touch its folder's
    mtime), so only an unheld folder that old is removed."""
    cutoff = time.time() - STALE_UPLOAD_S
    for entry in uploads.iterdir():
        with file_leases.taken_if_free(entry) as free:
            try:
                if free and entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)
            except FileNotFoundError:
                continue


def check_room(settings: Settings, db: Database, camera_id: int, incoming_bytes: int) -> None:
    """Refuse an upload of ``incoming_bytes`` before reading it: RateLimited (429) when it would
    take the camera over its daily bytes, InsufficientStorage (507) when it would leave less free
    disk than the floor (search_party/disk_space.py)."""
    limits.check_upload_bytes(db, camera_id, incoming_bytes, settings.camera_daily_upload_bytes, utcnow())
    disk_space.check_room(settings, incoming_bytes)


def _write_upload(stream: IO[bytes], path: Path) -> None:
    try:
        with path.open("wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InsufficientStorage("this server ran out of disk space while receiving the clip; "
                                      "nothing was stored. Try again later") from None
        raise


def receive_clip(settings: Settings, db: Database, camera_id: int, stream: IO[bytes], filename: str | None, *,
                 start: datetime | None = None, modified: float | None = None,
                 time_zone: str | None = None,
                 enqueue: Callable[[int], None] | None = None) -> ClipStatus:
    """Register an uploaded clip for ``camera_id`` (already authorised by the caller) and queue
    it with ``enqueue(clip_id)`` if it is new (or had failed and is retried).  ``modified`` is the
    file's modification time in seconds since the epoch."""
    name = safe_clip_name(filename)
    camera = cameras.get_camera(db, camera_id)
    if not camera.opted_in:
        raise UserError("this camera is not opted in, so its clips are not accepted; opt it in "
                        "on its page first")
    if camera.paused:
        raise UserError("this camera is paused; resume it on its page before uploading clips")
    if start is not None and start.tzinfo is None:
        raise UserError("the clip's start time needs a UTC offset, e.g. 2025-06-01T08:00:00+02:00")
    disk_space.check_room(settings, 0)
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    _sweep_stale(uploads)
    with tempfile.TemporaryDirectory(dir=uploads) as folder, file_leases.held(Path(folder)):
        path = Path(folder) / name
        _write_upload(stream, path)
        size = path.stat().st_size
        if size == 0:
            raise UserError(f"{name} is empty; send the clip's file again")
        disk_space.check_room(settings, size)  # its copy into the spool
        if modified is not None:
            os.utime(path, (modified, modified))

        def within_quota(own: Database, clip_id: int) -> None:
            limits.check_upload_bytes(own, camera_id, size, settings.camera_daily_upload_bytes,
                                      utcnow(), adding_clip=clip_id)

        submission: Submission = register_clip(settings, db, path, camera_id, start, time_zone=time_zone,
                                                   admit=within_quota)
    if submission.needs_processing and enqueue is not None:
        enqueue(submission.clip.id)
    return describe(submission.clip, duplicate=not submission.needs_processing)


def receive_owned_clip(settings: Settings, db: Database, camera_id: int, user_id: int, stream: IO[bytes],
                       filename: str | None, **options) -> ClipStatus:
    """``receive_clip`` for a signed-in owner: the camera must be theirs."""
    owned_camera(db, camera_id, user_id)
    return receive_clip(settings, db, camera_id, stream, filename, **options)


def camera_clips(db: Database, camera_id: int) -> list[storage.Clip]:
    """A camera's clips, newest first (the caller holds the camera's owner session or token)."""
    return list(reversed(storage.list_clips(db, camera_id=camera_id)))


def camera_clip(db: Database, clip_id: int, camera_id: int) -> storage.Clip:
    """One of the camera's clips; another camera's clip is NotFound, as a missing one is."""
    try:
        clip = storage.get_clip(db, clip_id)
    except NotFound:
        clip = None
    if clip is None or clip.camera_id != camera_id:
        raise NotFound(f"clip {clip_id} does not exist or is not this camera's")
    return clip


def parse_modified(value: object) -> float | None:
    """A file modification time as sent by a browser (milliseconds) or the uploader (seconds,
    with a fraction); None when absent.  Refuses anything that is not a plausible time."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        raise UserError(f"modified {str(value)[:40]!r} is not a time in seconds since 1970") from None
    if number > 1e11:  # milliseconds (a browser's File.lastModified)
        number /= 1000
    if not 0 < number < 1e11:
        raise UserError(f"modified {str(value)[:40]!r} is not a time in seconds since 1970")
    return number


def parse_local_time(value: object, offset_minutes: object) -> datetime:
    """A browser's ``datetime-local`` value (no zone) with the browser's offset from UTC in
    minutes, east positive (the page's script sends ``-Date.getTimezoneOffset()``)."""
    text = str(value or "").strip()
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text[:40]!r} is not a date and time such as 2025-06-01 08:15") from None
    try:
        minutes = int(str(offset_minutes or "0").strip())
    except ValueError:
        raise UserError("the page sent a time zone offset that is not a number; reload it") from None
    if not -16 * 60 <= minutes <= 16 * 60:
        raise UserError("the page sent an impossible time zone offset; reload it")
    if local.tzinfo is None:
        local = local.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    return local


def parse_start(value: object) -> datetime | None:
    """An ISO 8601 start time with a UTC offset, or None when absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"start {text[:40]!r} is not an ISO 8601 time such as "
                        "2025-06-01T08:00:00+02:00") from None
    if moment.tzinfo is None:
        raise UserError(f"start {text[:40]!r} has no UTC offset; add one, e.g. {text[:25]}+02:00")
    return moment
