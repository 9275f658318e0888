"""A volunteered clip file enters the spool: copied while hashed, then registered once per content.

``register_clip`` copies the file into the spool folder while hashing it (one read), and registers
it under its camera keyed by the content's sha256: the same bytes volunteered twice are one clip,
reported as a duplicate and never processed again (a clip that *failed* is queued again, since
the cause may have been fixed).  The worker (``clip_task.run_clip``) deletes the spooled copy
once the clip is done or failed: footage is never kept.

``clean`` (run by the worker's recovery) removes what no clip waits for: folders of clips that
were deleted, or whose registration never committed, and copies a dead process left half-made.
It must never remove a clip that is being registered: the move into the spool happens inside the
registering transaction, before the clip's row is visible to any other connection.  So every
registration holds the spool's lock from the move until its commit, and the clean-up runs only
when it can take that lock (otherwise it waits for its next run); a copy still being made holds
a lease of its own (search_party/ingest/file_leases.py).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from search_party.community import cameras
from search_party.community.filming_time import check_time_zone, time_from_name
from search_party.config import Settings
from search_party.errors import InsufficientStorage, UserError
from search_party.ingest import file_leases
from search_party.store import storage
from search_party.store.db import utcnow

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
PART_GRACE_S = 60  # an unleased copy younger than this may be one whose lease is being taken


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


def _copy_hashing(source: Path, part: Path) -> tuple[str, int]:
    """Copy ``source`` into the ``.part`` file; returns (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as src, part.open("wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
                size += len(block)
        # Keep the file's times: the pipeline's last resort for when the clip was filmed.
        stat = source.stat()
        os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InsufficientStorage("the spool's disk is full; nothing was stored. Free some space "
                                      "(or wait for the worker to drain the spool), then try again") from None
        raise UserError(f"cannot read {source}: {exc.strerror}") from None
    return digest.hexdigest(), size


def _spool_name(clip_id: int, source: Path) -> str:
    """``clip-<id>/<original name>``: one folder per clip, so the pipeline's messages name the
    file the neighbour sent."""
    return f"clip-{clip_id}/{source.name}"


def remove_spooled(settings: Settings, spool_name: str) -> None:
    path = settings.spool_dir / spool_name
    path.unlink(missing_ok=True)
    if path.parent != settings.spool_dir:
        shutil.rmtree(path.parent, ignore_errors=True)


@contextmanager
def registering(settings: Settings) -> Iterator[None]:
    """The spool's lock (on the spool folder itself), held by a registration from its move into
    the spool to its commit."""
    with file_leases.held(settings.spool_dir):
        yield


def register_clip(settings: Settings, db: Database, path: Path | str, camera_id: int,
                  start_time: datetime | None = None, *, time_zone: str | None = None,
                  admit: Callable[[Database, int], None] | None = None,
                  before_commit: Callable[[], None] | None = None) -> Submission:
    """Register a clip file for ``camera_id`` (which must be opted in and not paused).  Without
    ``start_time``, a camera file-name pattern in the clip's name gives a provisional one, read in
    the camera's time zone or else ``time_zone`` (the sender's); the pipeline still prefers the
    container's own creation time.

    ``admit(db, clip_id)`` runs inside the registering transaction, before the file is moved,
    and refuses by raising (receive_clip checks the camera's daily bytes there, so two uploads at
    once cannot both slip under it).  ``before_commit`` is a test hook: it runs right after the
    file was moved into the spool, before the clip's row is committed."""
    source = Path(path)
    if not source.is_file():
        raise UserError(f"{source} is not a file")
    start_source = "given"
    if start_time is None:
        zone = cameras.get_camera(db, camera_id).time_zone
        start_time = time_from_name(source.name, (zone, check_time_zone(time_zone)), utcnow())
        start_source = "file name"
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    fd, part_name = tempfile.mkstemp(dir=settings.spool_dir, suffix=PART_SUFFIX)
    os.close(fd)
    part = Path(part_name)

    def spool(clip_id: int) -> str:
        if admit is not None:
            admit(db, clip_id)
        name = _spool_name(clip_id, source)
        (settings.spool_dir / name).parent.mkdir(exist_ok=True)
        os.replace(part, settings.spool_dir / name)
        if before_commit is not None:
            before_commit()
        return name

    try:
        with file_leases.held(part):
            sha256, size = _copy_hashing(source, part)
            with registering(settings):
                clip, created = storage.create_clip(db, camera_id, sha256, source.name, size,
                                                    start_time=start_time, start_source=start_source,
                                                    spool=spool)
                if created or clip.status != "failed":
                    return Submission(clip, created)
                storage.set_spool_name(db, clip.id, spool(clip.id))
                retried = storage.retry_clip(db, clip.id)
        return Submission(storage.get_clip(db, clip.id), created=False, retried=retried)
    finally:
        part.unlink(missing_ok=True)


def clean(settings: Settings, db: Database) -> list[str]:
    """Remove from the spool what no queued or processing clip waits for (module notes); returns
    the names removed.  Does nothing while a registration holds the spool, to try again later."""
    if not settings.spool_dir.is_dir():
        return []
    with file_leases.taken_if_free(settings.spool_dir) as free:
        if not free:
            log.info("a clip is being registered; the spool is cleaned at the next run")
            return []
        waiting = {r[0].split("/")[0] for r in db.execute(
            "SELECT spool_name FROM clips WHERE spool_name IS NOT NULL "
            "AND status IN ('queued', 'processing')")}
        removed = []
        for path in settings.spool_dir.iterdir():
            if path.name in waiting:
                continue
            if path.name.endswith(PART_SUFFIX):
                if not _abandoned_part(path):
                    continue
                path.unlink(missing_ok=True)
            else:
                shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _abandoned_part(path: Path) -> bool:
    """A copy nobody holds a lease on, and not one just made (its lease may not be taken yet)."""
    with file_leases.taken_if_free(path) as free:
        if not free:
            return False
        try:
            changed = path.stat().st_mtime
        except FileNotFoundError:
            return False
        return time.time() - changed > PART_GRACE_S
