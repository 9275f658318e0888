"""What a pet owner's search page says is happening, in numbers the owner may know.

- cameras in range: opted-in, unpaused cameras whose *public area* (coarse_location's cell)
  has its centre within the search's radius, the same test the geofence itself uses, so however
  small a search is drawn, the count tells nothing finer than a camera's cell;
- sightings checked: the stored sightings the search may score (inside the fence, after the
  last-seen time, the same species and model), i.e. what it has compared the photos with;
- requests sent, shared, found matches: ``consent.progress`` (a decline looks like a silence).

Only the report's owner may ask (``consent.progress`` refuses anyone else).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from search_party.community import consent
from search_party.community.reports import LostReport, get_lost_report
from search_party.search import matching
from search_party.search.geofence import Point
from search_party.store.db import utcnow


@dataclass(frozen=True)
class SearchStatus:
    report: LostReport
    cameras_in_range: int
    sightings_checked: int | None  # None once the search's vectors are gone (found)
    requests_sent: int
    shared: int
    found_matches: int
    expires_in: timedelta | None  # None unless active

    @property
    def expires_soon(self) -> bool:
        return self.expires_in is not None and self.expires_in < timedelta(hours=12)


def cameras_in_range(db: Database, center: Point, radius_m: float) -> int:
    """Opted-in, unpaused cameras whose coarse area's centre is within ``radius_m`` of ``center``:
    the cameras a search with that fence looks at (``matching.fenced_cameras``)."""
    fence = matching.Fence(center, radius_m, utcnow())
    return len(matching.fenced_cameras(db, fence))


def _query_model_versions(db: Database, report_id: int) -> list[str]:
    return [r[0] for r in db.execute(
        "SELECT DISTINCT q.model_version FROM query_vectors q JOIN report_photos p ON p.id = q.photo_id "
        "WHERE p.lost_report_id = ?", [report_id])]


def search_status(db: Database, report_id: int, viewer_id: int, now: datetime | None = None) -> SearchStatus:
    """The search's state for its owner (Forbidden for anyone else)."""
    progress = consent.progress(db, report_id, viewer_id)
    report = get_lost_report(db, report_id)
    fence = matching.Fence(report.last_seen_point, report.radius_m, report.last_seen)
    cameras = matching.fenced_cameras(db, fence)  # once: it depends only on the place and radius
    versions = _query_model_versions(db, report_id)
    checked = (sum(len(matching.fenced_sightings(db, fence, v, report.species, cameras=cameras))
                   for v in versions)
               if versions else None)
    now = now or utcnow()
    return SearchStatus(
        report=report, cameras_in_range=len(cameras),
        sightings_checked=checked, requests_sent=progress.requests_sent, shared=progress.shared,
        found_matches=progress.found_matches,
        expires_in=max(report.expires - now, timedelta(0)) if report.status == "active" else None)
