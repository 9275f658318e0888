"""The server's side of a remote ingest worker (web/internal.py is the thin HTTP layer over it):
claim a queued clip for a worker, hand it the clip's bytes, renew its claim while it works, and
store its result, or its reason for failing, exactly once.

Exactly once is the local worker's rule (search_party.store.storage): a clip is claimed by one
atomic UPDATE, and its sightings are written in ONE transaction with its ``done`` status, only
while the claim that posts them still holds it.  A remote claim is ``remote#<token id>:<nonce>``;
a worker may act only on its own token's claims.  A remote worker's claimed time is renewed by
its heartbeats; one silent for SEARCH_PARTY_WORKER_LEASE_SECONDS (killed, cut off, revoked) is
presumed dead, and the server's upkeep puts its clip back in the queue (search_party.ingest.jobs),
after which that worker's late result is refused (409) and thrown away.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from search_party import vision
from search_party.community import standing_searches
from search_party.config import Settings
from search_party.errors import Forbidden, UserError
from search_party.ingest.jobs import REMOTE_CLAIM_PREFIX
from search_party.ingest.remote_wire import from_wire
from search_party.ingest.spool import remove_spooled
from search_party.store import storage
from search_party.store.db import to_db_time, utcnow, write_transaction

log = logging.getLogger(__name__)
MAX_REASON = 500


@dataclass(frozen=True)
class RemoteJob:
    """What a worker needs to process one clip it has claimed."""

    clip_id: int
    claim: str
    sha256: str
    size_bytes: int
    filename: str
    start_time: datetime | None
    start_source: str | None
    lease_seconds: int

    def as_json(self) -> dict[str, Any]:
        return {"clip_id": self.clip_id, "claim": self.claim, "sha256": self.sha256,
                "size_bytes": self.size_bytes, "filename": self.filename,
                "start_time": self.start_time.isoformat() if self.start_time else None,
                "start_source": self.start_source, "lease_seconds": self.lease_seconds}


def server_models(settings: Settings) -> dict[str, Any]:
    """The embedder a worker must run for its vectors to be accepted here."""
    embedder = vision.load_models(settings).embedder
    return {"embedder": settings.embedder, "embedder_version": embedder.version, "dim": embedder.dim,
            "detector": settings.detector}


def claim(settings: Settings, db: Database, clip_id: int, token_id: int) -> RemoteJob | None:
    """queued -> processing for this worker, or None when the clip is not queued (another worker
    has it, it is finished, or an opt-out deleted it): the worker then does nothing."""
    held = f"{REMOTE_CLAIM_PREFIX}{token_id}:{uuid.uuid4().hex[:12]}"
    clip = storage.claim_clip(db, clip_id, held)
    if clip is None:
        return None
    if not clip.spool_name or not (settings.spool_dir / clip.spool_name).is_file():
        storage.fail_clip(db, clip_id, "the clip's file is no longer in the spool folder (the upload was "
                                       "interrupted?); volunteer it again", claim=held)
        return None
    return RemoteJob(clip.id, held, clip.sha256, clip.size_bytes, clip.filename, clip.start_time,
                     clip.start_source, settings.worker_lease_seconds)


def _held_clip(db: Database, clip_id: int, held: str, token_id: int) -> storage.Clip:
    """The clip, if ``held`` is this worker's own claim and still holds it (ClaimLost if not)."""
    if not held.startswith(f"{REMOTE_CLAIM_PREFIX}{token_id}:"):
        raise Forbidden("that claim belongs to another worker")
    clip = storage.get_clip(db, clip_id)
    if clip.status != "processing" or clip.claimed_by != held:
        raise storage.ClaimLost(f"clip {clip_id} is no longer processing under claim {held}")
    return clip


def clip_file(settings: Settings, db: Database, clip_id: int, held: str, token_id: int) -> Path:
    """The spooled clip a worker holds, to be streamed to it."""
    clip = _held_clip(db, clip_id, held, token_id)
    path = settings.spool_dir / clip.spool_name if clip.spool_name else None
    if path is None or not path.is_file():
        raise storage.ClaimLost(f"clip {clip_id}'s file is gone from the spool")
    return path


def renew(db: Database, clip_id: int, held: str, token_id: int) -> None:
    """The worker is alive and still at it: its claim's lease starts again (ClaimLost if it is gone)."""
    _held_clip(db, clip_id, held, token_id)
    with write_transaction(db):
        cursor = db.execute("UPDATE clips SET claimed_at = ? WHERE id = ? AND status = 'processing' "
                            "AND claimed_by = ?", [to_db_time(utcnow()), clip_id, held])
    if cursor.rowcount != 1:
        raise storage.ClaimLost(f"clip {clip_id} is no longer processing under claim {held}")


def store_result(settings: Settings, db: Database, clip_id: int, held: str, token_id: int,
                 body: Any) -> list[int]:
    """Check the worker's result (search_party.ingest.remote_wire) and store it in one transaction
    with the clip's ``done`` status, under its claim; then the footage is deleted.  UserError (and
    nothing stored) for a result the checks refuse; ClaimLost when the claim no longer holds."""
    clip = _held_clip(db, clip_id, held, token_id)
    models = server_models(settings)
    result = from_wire(body, dim=models["dim"], version=models["embedder_version"])
    ids = storage.save_clip_result(db, clip_id, result, held)
    standing_searches.after_clip_stored(db, len(ids))
    if clip.spool_name:
        remove_spooled(settings, clip.spool_name)  # footage is never kept once processed
    log.info("clip %d done by remote worker %d: %d sighting(s)", clip_id, token_id, len(ids))
    return ids


def store_failure(settings: Settings, db: Database, clip_id: int, held: str, token_id: int, reason: Any) -> None:
    """The worker could not process the clip (not a video, too long...): failed with its reason."""
    if not isinstance(reason, str) or not reason.strip():
        raise UserError("a failure needs a reason a person can read")
    clip = _held_clip(db, clip_id, held, token_id)
    if not storage.fail_clip(db, clip_id, reason.strip()[:MAX_REASON], claim=held):
        raise storage.ClaimLost(f"clip {clip_id} is no longer processing under claim {held}")
    if clip.spool_name:
        remove_spooled(settings, clip.spool_name)
