"""Searches that keep looking: a dog filmed an hour after its report is still found.

Each active search remembers the highest sighting id it has considered (``scored_through``).
Sighting ids only grow (AUTOINCREMENT, and clips are stored one transaction at a time), so
"sightings with a larger id" is exactly "stored since this search last looked":

- ``search_report`` is a search's first run (and the run after a renewal): every sighting already
  stored inside its fence and window, scored through the FAISS index restricted to those
  sightings (matching.find_candidates);
- ``rescore_new_sightings`` runs right after a clip's sightings are stored (the ingest task calls
  it): each active search scores the new sightings inside its fence at once
  (matching.rescore_sighting); its hits are merged into visits by search_report's rule
  (scoring.merge_visits), and a visit that is the same as a sighting the search already matched
  joins it instead of asking again (matching.joins_visit);
- the worker's periodic task runs the same catch-up, so a sighting stored by a worker that died
  before it could re-score is still scored: SQLite, not a message, says what is left to do.

Scoring and recording the candidates happen in one write transaction, and a search's watermark
is what its index holds (``VectorIndex.through``, read there), so no sighting stored in between
is skipped: it is above the watermark, and the standing search scores it.  The index is brought
up to date before that transaction, never inside it.  Candidates then become consent requests
(consent.send_requests), within each camera's daily quota.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlite_utils import Database

from search_party.community import consent
from search_party.community.reports import LostReport, get_lost_report, report_query
from search_party.search import matching, scoring
from search_party.store.db import to_db_time, utcnow, write_transaction
from search_party.store.vector_index import VectorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchRun:
    """What one run of a search did."""

    report_id: int
    sightings_compared: int
    new_matches: list[int]
    asked: list[int]


def _max_sighting_id(db: Database) -> int:
    return db.execute("SELECT coalesce(max(id), 0) FROM sightings").fetchone()[0]


def _fence(report: LostReport) -> matching.Fence:
    return matching.Fence(report.last_seen_point, report.radius_m, report.last_seen)


def _per_camera(db: Database, sighting_ids: np.ndarray, cameras: np.ndarray,
                since: datetime) -> dict[int, int]:
    """How many of these fenced sightings (of ``cameras``, ended at or after ``since``) each
    camera holds, for the camera owners' activity logs.  Answered from the fence's covering index
    (camera, end time, id), never from the table's rows: thousands of row lookups cost tens of ms."""
    if not len(sighting_ids):
        return {}
    rows = db.execute("SELECT camera_id, count(*) FROM sightings WHERE camera_id IN "
                      "(SELECT value FROM json_each(?)) AND last_time >= ? AND id IN "
                      "(SELECT value FROM json_each(?)) GROUP BY camera_id",
                      [json.dumps(cameras.tolist()), to_db_time(since),
                       json.dumps(sighting_ids.tolist())]).fetchall()
    return dict(rows)


def search_report(db: Database, report_id: int, index: VectorIndex,
                  now: datetime | None = None) -> SearchRun:
    """Run an active search over every stored sighting it may score, record the candidates, and
    ask the camera owners (see the module notes).  An ended search does nothing."""
    now = now or utcnow()
    report = get_lost_report(db, report_id)
    query = report_query(db, report_id, index.model_version)
    if report.status != "active" or query is None:
        return SearchRun(report_id, 0, [], [])
    fence = _fence(report)
    # Catching the index up (or rebuilding it) happens before the write lock, so no writer waits
    # for it.  Sightings stored after this are past index.through: the standing search scores
    # them (rescore_new_sightings), since scored_through stops at what the index holds.
    index.sync(db)
    with write_transaction(db):
        through = index.through
        cameras = matching.fenced_cameras(db, fence)
        fenced = matching.fenced_sightings(db, fence, query.model_version, query.species, cameras)
        result = matching.find_candidates(db, index, query, fence, cameras=cameras, allowed=fenced)
        fenced = fenced[fenced <= through]
        new = consent.record_candidates(db, report_id,
                                        [(c.sighting_ids, c.score) for c in result.asks],
                                        compared=_per_camera(db, fenced, cameras, fence.since), now=now)
        db.execute("UPDATE lost_reports SET scored_through = max(scored_through, ?) WHERE id = ?",
                   [through, report_id])
    asked = consent.send_requests(db, now)
    return SearchRun(report_id, len(fenced), new, [m for m in asked if m in new])


def _score_new(db: Database, report: LostReport, through: int, now: datetime) -> SearchRun:
    """One search scores the sightings stored since it last looked (inside a transaction).  Only
    sightings of a model its photos were embedded with can be scored (a new model means new
    query vectors)."""
    matched = [r[0] for r in db.execute(
        "SELECT sighting_id FROM matches WHERE lost_report_id = ? AND sighting_id IS NOT NULL",
        [report.id])]
    fence = _fence(report)
    cameras = matching.fenced_cameras(db, fence)  # one fence, whatever the model version
    visits: list[tuple[tuple[int, ...], float]] = []
    compared: dict[int, int] = {}
    scored = 0
    versions = [r[0] for r in db.execute("SELECT DISTINCT model_version FROM sightings "
                                         "WHERE id > ? AND id <= ?", [report.scored_through, through])]
    for version in versions:
        query = report_query(db, report.id, version)
        if query is None:
            continue
        search = matching.StandingSearch(report.id, fence, query)
        fenced = matching.fenced_sightings(db, fence, version, query.species, cameras)
        fresh = fenced[(fenced > report.scored_through) & (fenced <= through)]
        scored += len(fresh)
        for camera_id, count in _per_camera(db, fresh, cameras, fence.since).items():
            compared[camera_id] = compared.get(camera_id, 0) + count
        hits = [hit for sighting_id in fresh.tolist()
                for hit in matching.rescore_sighting(db, sighting_id, [search])]
        if not hits:
            continue
        # The new hits become visits by search_report's own rule (several clips of one visit
        # scored in one run are one candidate), and a visit that is the same as one this search
        # already asked about joins that request (record_candidates skips it).
        ids = np.array([h.sighting_id for h in hits], dtype=np.int64)
        scored_hits = matching.scored_sightings(db, ids, np.array([h.score for h in hits]))
        for visit in scoring.merge_visits(scored_hits, query.vectors,
                                          agree=scoring.same_visit_for(version)):
            same = tuple(m for m in matched
                         if any(matching.joins_visit(db, m, s) for s in visit.sighting_ids))
            visits.append(((*visit.sighting_ids, *same), visit.score))
    visits.sort(key=lambda v: -v[1])
    new = consent.record_candidates(db, report.id, visits, compared=compared, now=now)
    return SearchRun(report.id, scored, new, [])


def rescore_new_sightings(db: Database, now: datetime | None = None) -> list[SearchRun]:
    """Let every active search score the sightings stored since it last looked, then send the
    consent requests that brings.  Cheap when nothing is new: one query per active search."""
    now = now or utcnow()
    runs = []
    for (report_id,) in db.execute(
            "SELECT id FROM lost_reports WHERE status = 'active' AND expires > ? ORDER BY id",
            [to_db_time(now)]).fetchall():
        with write_transaction(db):
            through = _max_sighting_id(db)
            report = get_lost_report(db, report_id)
            if report.status != "active" or through <= report.scored_through:
                continue
            runs.append(_score_new(db, report, through, now))
            db.execute("UPDATE lost_reports SET scored_through = ? WHERE id = ?", [through, report_id])
    asked = set(consent.send_requests(db, now))
    return [SearchRun(r.report_id, r.sightings_compared, r.new_matches,
                      [m for m in r.new_matches if m in asked]) for r in runs]


def after_clip_stored(db: Database, new_sightings: int) -> None:
    """The ingest task's hook, right after a clip's sightings were committed.  A failure here
    must not fail the stored clip: it is logged, and the worker's periodic catch-up retries."""
    if not new_sightings:
        return
    try:
        rescore_new_sightings(db)
    except Exception:
        log.exception("re-scoring standing searches failed; the periodic catch-up will retry")
