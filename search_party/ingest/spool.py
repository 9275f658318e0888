"""A volunteered clip file enters the spool: copied while hashed, then registered once per content.

``register_clip`` copies the file into the spool folder while hashing it (one read), and registers
it under its camera keyed by the content's sha256: the same bytes volunteered twice are one clip,
reported as a duplicate and never processed again (a clip that *failed* is queued again, since
the cause may have been fixed).  The worker (``clip_task.run_clip``) deletes the spooled copy
once the clip is done or failed: footage is never kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from search_party.community import cameras
from search_party.community.filming_time import check_time_zone, time_from_name
from search_party.config import Settings
from search_party.errors import UserError
from search_party.store import storage
from search_party.store.db import utcnow

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class Submission:
    """What registering a clip did: ``created`` False means a duplicate (nothing new stored);
    ``retried`` True means it had failed before and is queued again."""

    clip: storage.Clip
    created: bool
    retried: bool = False

    @property
    def needs_processing(self) -> bool:
        return self.created or self.retried


def _copy_hashing(source: Path, spool_dir: Path) -> tuple[str, int, Path]:
    """Copy ``source`` into the spool as a ``.part`` file; returns (sha256, size, part path)."""
    digest = hashlib.sha256()
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(dir=spool_dir, suffix=PART_SUFFIX)
    size = 0
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
                size += len(block)
        # Keep the file's times: the pipeline's last resort for when the clip was filmed.
        stat = source.stat()
        os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    except OSError as exc:
        Path(part).unlink(missing_ok=True)
        raise UserError(f"cannot read {source}: {exc.strerror}") from None
    return digest.hexdigest(), size, Path(part)


def _spool_name(clip_id: int, source: Path) -> str:
    """``clip-<id>/<original name>``: one folder per clip, so the pipeline's messages name the
    file the neighbour sent."""
    return f"clip-{clip_id}/{source.name}"


def remove_spooled(settings: Settings, spool_name: str) -> None:
    path = settings.spool_dir / spool_name
    path.unlink(missing_ok=True)
    if path.parent != settings.spool_dir:
        shutil.rmtree(path.parent, ignore_errors=True)


def register_clip(settings: Settings, db: Database, path: Path | str, camera_id: int,
                  start_time: datetime | None = None, *, time_zone: str | None = None) -> Submission:
    """Register a clip file for ``camera_id`` (which must be opted in and not paused).  Without
    ``start_time``, a camera file-name pattern in the clip's name gives a provisional one, read in
    the camera's time zone or else ``time_zone`` (the sender's); the pipeline still prefers the
    container's own creation time."""
    source = Path(path)
    if not source.is_file():
        raise UserError(f"{source} is not a file")
    start_source = "given"
    if start_time is None:
        zone = cameras.get_camera(db, camera_id).time_zone
        start_time = time_from_name(source.name, (zone, check_time_zone(time_zone)), utcnow())
        start_source = "file name"
    sha256, size, part = _copy_hashing(source, settings.spool_dir)

    def spool(clip_id: int) -> str:
        name = _spool_name(clip_id, source)
        (settings.spool_dir / name).parent.mkdir(exist_ok=True)
        os.replace(part, settings.spool_dir / name)
        return name

    try:
        clip, created = storage.create_clip(db, camera_id, sha256, source.name, size,
                                            start_time=start_time, start_source=start_source, spool=spool)
        if created or clip.status != "failed":
            return Submission(clip, created)
        storage.set_spool_name(db, clip.id, spool(clip.id))
        retried = storage.retry_clip(db, clip.id)
        return Submission(storage.get_clip(db, clip.id), created=False, retried=retried)
    finally:
        part.unlink(missing_ok=True)

