"""The worker's task body: one queued clip is claimed, processed and stored, or failed with a reason.

``run_clip`` is what the worker runs for each queued clip, and what `search-party ingest --wait`
runs in the shell: claim, process, store in one transaction, delete the spooled copy.  Statuses a
person can read at every step: queued, processing, done (with counts) or failed (with a reason).

Test hook (crash tests only): with ``SEARCH_PARTY_TEST_PAUSE_BEFORE_COMMIT=/path/marker`` set, the
worker creates that marker file from *inside* the open transaction that stores a clip's result,
then sleeps (at most two minutes) before committing, so a test can SIGKILL it at the worst moment.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from search_party.community import standing_searches
from search_party.config import Settings
from search_party.errors import ImageError, ModelError, UserError
from search_party.ingest.options import IngestOptions
from search_party.ingest.pipeline import process_clip
from search_party.ingest.spool import remove_spooled
from search_party.store import storage
from search_party.store.db import open_db
from search_party.vision import Models, decode_threads, load_models

log = logging.getLogger(__name__)

TEST_PAUSE_SECONDS = 120


def pause_for_crash_tests(marker: Path | None) -> Callable[[], None] | None:
    if marker is None:
        return None

    def pause() -> None:
        marker.write_text(str(os.getpid()))
        time.sleep(TEST_PAUSE_SECONDS)

    return pause


def failure_reason(exc: BaseException) -> str:
    """What a person reads for a clip that failed with ``exc``."""
    if isinstance(exc, (UserError, ImageError, ModelError)):
        return str(exc)
    return f"internal error while processing the clip ({type(exc).__name__}: {exc}); tell the operator"


def run_clip(settings: Settings, clip_id: int, claim: str, *,
             progress: Callable[..., None] | None = None,
             models: Models | None = None) -> storage.Clip | None:
    """Process one queued clip under ``claim`` (see ``jobs.new_claim``): claim it, run the
    pipeline, store its sightings and mark it done in one transaction, or mark it failed with a
    reason.  Returns the clip as it ended, or None when there was nothing to do (the clip was not
    queued: a duplicate task, or it was deleted by an opt-out meanwhile).  ``models``: those the
    settings name unless given (the privacy audit gives them wrapped, to record what they see)."""
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
            models = models or load_models(settings)
            options = IngestOptions(decode_threads=decode_threads(settings.threads))
            result = process_clip(spooled, start_time=clip.start_time,
                                  start_source=clip.start_source or "given", models=models,
                                  options=options, progress=progress)
            storage.save_clip_result(db, clip_id, result, claim,
                                     before_commit=pause_for_crash_tests(settings.test_pause_before_commit))
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
            if not storage.fail_clip(db, clip_id, failure_reason(exc), claim=claim):
                return None
            log.info("clip %d failed: %s", clip_id, failure_reason(exc))
        if clip.spool_name:
            remove_spooled(settings, clip.spool_name)  # done or failed: footage is never kept
        return storage.get_clip(db, clip_id)
