"""From a volunteered clip file to stored sightings: register it, then process it (the task body).

``register_clip`` copies the file into the spool folder while hashing it (one read), and registers
it under its camera keyed by the content's sha256: the same bytes volunteered twice are one clip,
reported as a duplicate and never processed again (a clip that *failed* is queued again, since
the cause may have been fixed).  ``run_clip`` is what the worker runs for each queued clip, and
what `search-party ingest --wait` runs in the shell: claim, process, store in one transaction,
delete the spooled copy.  Statuses a person can read at every step: queued, processing, done
(with counts) or failed (with a reason).

Test hook (crash tests only): with ``SEARCH_PARTY_TEST_PAUSE_BEFORE_COMMIT=/path/marker`` set, the
worker creates that marker file from *inside* the open transaction that stores a clip's result,
then sleeps (at most two minutes) before committing, so a test can SIGKILL it at the worst moment.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from embeddings.detector import PetDetector
from embeddings.embedder import Embedder
from embeddings.images import ImageError
from embeddings.registry import ModelError
from search_party import standing_searches, storage
from search_party.config import Settings
from search_party.db import open_db
from search_party.errors import UserError
from search_party.pipeline import DETECTOR_THREADS, process_clip

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
TEST_PAUSE_ENV = "SEARCH_PARTY_TEST_PAUSE_BEFORE_COMMIT"
TEST_PAUSE_SECONDS = 120


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
                  start_time: datetime | None = None) -> Submission:
    """Register a clip file for ``camera_id`` (which must be opted in and not paused)."""
    source = Path(path)
    if not source.is_file():
        raise UserError(f"{source} is not a file")
    sha256, size, part = _copy_hashing(source, settings.spool_dir)

    def spool(clip_id: int) -> str:
        name = _spool_name(clip_id, source)
        (settings.spool_dir / name).parent.mkdir(exist_ok=True)
        os.replace(part, settings.spool_dir / name)
        return name

    try:
        clip, created = storage.create_clip(db, camera_id, sha256, source.name, size,
                                            start_time=start_time, spool=spool)
        if created or clip.status != "failed":
            return Submission(clip, created)
        storage.set_spool_name(db, clip.id, spool(clip.id))
        retried = storage.retry_clip(db, clip.id)
        return Submission(storage.get_clip(db, clip.id), created=False, retried=retried)
    finally:
        part.unlink(missing_ok=True)


# ---------------------------------------------------------------- models, once per process


@dataclass(frozen=True)
class Models:
    detector: PetDetector
    embedder: Embedder


_models: dict[tuple[str, str, Path], Models] = {}
_models_lock = threading.Lock()


def load_models(settings: Settings) -> Models:
    """The detector and embedder for these settings, loaded once per process and then shared
    (onnxruntime sessions are safe to run from several threads)."""
    key = (settings.detector, settings.embedder, settings.cache_dir)
    with _models_lock:
        if key not in _models:
            started = time.monotonic()
            _models[key] = Models(PetDetector.load(settings.detector, threads=DETECTOR_THREADS),
                                  Embedder.load(cache_dir=settings.cache_dir, model=settings.embedder))
            log.info("models loaded in %.1f s", time.monotonic() - started)
        return _models[key]


# ---------------------------------------------------------------- the task body


def _test_pause_hook() -> Callable[[], None] | None:
    marker = os.environ.get(TEST_PAUSE_ENV)
    if not marker:
        return None

    def pause() -> None:
        Path(marker).write_text(str(os.getpid()))
        time.sleep(TEST_PAUSE_SECONDS)

    return pause


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (UserError, ImageError, ModelError)):
        return str(exc)
    return f"internal error while processing the clip ({type(exc).__name__}: {exc}); tell the operator"


def run_clip(settings: Settings, clip_id: int, claim: str, *,
             progress: Callable[..., None] | None = None) -> storage.Clip | None:
    """Process one queued clip under ``claim`` (see ``jobs.new_claim``): claim it, run the
    pipeline, store its sightings and mark it done in one transaction, or mark it failed with a
    reason.  Returns the clip as it ended, or None when there was nothing to do (the clip was not
    queued: a duplicate task, or it was deleted by an opt-out meanwhile)."""
    with open_db(settings.db_path) as db:
        clip = storage.claim_clip(db, clip_id, claim)
        if clip is None:
            log.info("clip %d is not queued; nothing to do", clip_id)
            return None
        spooled = settings.spool_dir / clip.spool_name if clip.spool_name else None
        started = time.monotonic()
        try:
            if spooled is None or not spooled.is_file():
                raise UserError("the clip's file is no longer in the spool folder (the upload was "
                                "interrupted?); volunteer it again")
            models = load_models(settings)
            result = process_clip(spooled, start_time=clip.start_time, detector=models.detector,
                                  embedder=models.embedder, progress=progress)
            storage.save_clip_result(db, clip_id, result, claim, before_commit=_test_pause_hook())
            standing_searches.after_clip_stored(db, len(result.sightings))
            log.info("clip %d done in %.1f s: %d sighting(s)", clip_id, time.monotonic() - started,
                     len(result.sightings))
        except storage.ClaimLost as exc:
            # Re-queued for another worker (which needs the spooled file) or deleted by an
            # opt-out (the next worker start clears its file): leave the spool alone.
            log.warning("%s; its result was discarded", exc)
            return None
        except Exception as exc:
            if not isinstance(exc, (UserError, ImageError, ModelError)):
                log.exception("clip %d failed", clip_id)
            if not storage.fail_clip(db, clip_id, _reason(exc), claim=claim):
                return None
            log.info("clip %d failed: %s", clip_id, _reason(exc))
        if clip.spool_name:
            remove_spooled(settings, clip.spool_name)  # done or failed: footage is never kept
        return storage.get_clip(db, clip_id)
