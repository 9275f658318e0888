"""Expiry and erasure (invariant 4 of DESIGN.md): searches end, footage-derived data ages out.

- A search (lost report) **expires** at its expiry time: it stops scoring, its unanswered requests
  become ``expired`` (the camera owner's log says so) and its owner is told it can be renewed.
- **Found** ends a search at once: its query vectors are deleted, and so are its requests still
  pending (with their inbox entries), its declined and its expired ones.  What camera owners chose
  to share stays with the report until the report goes.
- The **retention job** deletes every sighting (thumbnail, vectors, crops, and the matches that
  point at it) older than its camera's retention days, by the time it was filmed, and the clip
  records that no longer have any; ended reports are deleted ``ENDED_REPORT_GRACE`` after they end
  (the grace lets an expired search be renewed); found reports stop matching when they expire.
  The FAISS index file is brought in step right after, so no purged vector stays searchable.

``run`` is what the worker's periodic task calls (search_party/ingest/jobs.py) and what
`search-party retention run` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from search_party.community import activity, notifications
from search_party.errors import Forbidden, NotFound
from search_party.store.db import to_db_time, utcnow, write_transaction
from search_party.store.vector_index import VectorIndex

ENDED_REPORT_GRACE = timedelta(days=30)


@dataclass
class RetentionRun:
    expired_searches: list[int] = field(default_factory=list)
    expired_requests: int = 0
    sightings_purged: int = 0
    clips_purged: int = 0
    lost_reports_deleted: int = 0
    found_reports_deleted: int = 0
    index_refreshed: bool = False


def end_search(db: Database, report_id: int, now: datetime | None = None) -> bool:
    """End a search because the pet was found (see the module notes).  Returns False when it had
    already ended that way (marking found twice is one ending)."""
    now = now or utcnow()
    with write_transaction(db):
        row = db.execute("SELECT status, pet_name, species FROM lost_reports WHERE id = ?",
                         [report_id]).fetchone()
        if row is None:
            raise NotFound(f"lost report {report_id} does not exist")
        status, pet_name, species = row
        if status == "found":
            return False
        for (camera_id,) in db.execute(
                "SELECT DISTINCT camera_id FROM matches WHERE lost_report_id = ? AND state = 'asked'",
                [report_id]).fetchall():
            activity.record(db, camera_id, report_id, pet_name, species, "ended", at=now)
        db.execute("DELETE FROM matches WHERE lost_report_id = ? AND state != 'shared'", [report_id])
        db.execute("DELETE FROM query_vectors WHERE photo_id IN "
                   "(SELECT id FROM report_photos WHERE lost_report_id = ?)", [report_id])
        db.execute("UPDATE lost_reports SET status = 'found', ended = ?, updated = ? WHERE id = ?",
                   [to_db_time(now), to_db_time(now), report_id])
    return True


def mark_found(db: Database, report_id: int, user_id: int, now: datetime | None = None) -> bool:
    """The owner marks their pet found (``end_search`` for the report's owner only)."""
    row = db.execute("SELECT owner_id FROM lost_reports WHERE id = ?", [report_id]).fetchone()
    if row is None or row[0] != user_id:
        raise Forbidden(f"lost report {report_id} is not yours")
    return end_search(db, report_id, now)


def expire_searches(db: Database, now: datetime | None = None) -> tuple[list[int], int]:
    """Expire every active search past its expiry.  Returns (report ids, requests expired)."""
    now = now or utcnow()
    now_text = to_db_time(now)
    expired_requests = 0
    with write_transaction(db):
        reports = db.execute("SELECT id, owner_id, pet_name, species FROM lost_reports "
                             "WHERE status = 'active' AND expires <= ?", [now_text]).fetchall()
        for report_id, owner_id, pet_name, species in reports:
            for (camera_id,) in db.execute(
                    "SELECT DISTINCT camera_id FROM matches WHERE lost_report_id = ? AND state = 'asked'",
                    [report_id]).fetchall():
                activity.record(db, camera_id, report_id, pet_name, species, "expired", at=now)
            expired_requests += db.execute(
                "UPDATE matches SET state = 'expired', updated = ? WHERE lost_report_id = ? "
                "AND state IN ('candidate', 'asked')", [now_text, report_id]).rowcount
            db.execute("UPDATE lost_reports SET status = 'expired', ended = ?, updated = ? WHERE id = ?",
                       [now_text, now_text, report_id])
            notifications.notify(
                db, owner_id, "search_expired", f"The search for {pet_name} has expired",
                f"The search for {pet_name} stopped. If {pet_name} is still missing, renew it to keep "
                f"looking; otherwise it and its photos are deleted in {ENDED_REPORT_GRACE.days} days.",
                lost_report_id=report_id)
    return [r[0] for r in reports], expired_requests


def purge_sightings(db: Database, now: datetime | None = None) -> tuple[int, int]:
    """Delete sightings filmed longer ago than their camera's retention days, and finished clip
    records older than that which have no sightings left.  Returns (sightings, clips) deleted."""
    now = now or utcnow()
    sightings = clips = 0
    with write_transaction(db):
        for camera_id, days in db.execute("SELECT id, retention_days FROM cameras").fetchall():
            cutoff = to_db_time(now - timedelta(days=days))
            sightings += db.execute("DELETE FROM sightings WHERE camera_id = ? AND last_time < ?",
                                    [camera_id, cutoff]).rowcount
            clips += db.execute(
                "DELETE FROM clips WHERE camera_id = ? AND status IN ('done', 'failed') AND updated < ? "
                "AND NOT EXISTS (SELECT 1 FROM sightings s WHERE s.clip_id = clips.id)",
                [camera_id, cutoff]).rowcount
    return sightings, clips


def purge_ended_reports(db: Database, now: datetime | None = None) -> tuple[int, int]:
    """Delete lost reports that ended more than ENDED_REPORT_GRACE ago and found reports closed or
    expired that long ago, with their photos, vectors, matches and conversations."""
    cutoff = to_db_time((now or utcnow()) - ENDED_REPORT_GRACE)
    with write_transaction(db):
        lost = db.execute("DELETE FROM lost_reports WHERE status != 'active' AND ended < ?",
                          [cutoff]).rowcount
        found = db.execute("DELETE FROM found_reports WHERE (status = 'closed' AND updated < ?) "
                           "OR expires < ?", [cutoff, cutoff]).rowcount
    return lost, found


def run(db: Database, now: datetime | None = None,
        index_path: Path | str | None = None) -> RetentionRun:
    """Expire searches, purge old sightings and ended reports, and refresh the index file."""
    now = now or utcnow()
    result = RetentionRun()
    result.expired_searches, result.expired_requests = expire_searches(db, now)
    result.sightings_purged, result.clips_purged = purge_sightings(db, now)
    result.lost_reports_deleted, result.found_reports_deleted = purge_ended_reports(db, now)
    if index_path is not None and result.sightings_purged:
        result.index_refreshed = VectorIndex.refresh(db, index_path) is not None
    return result

