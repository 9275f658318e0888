"""The matching core: a lost dog's query against the sightings inside its fence, and nothing else.

Geofence first (invariant 3 of DESIGN.md).  A search scores only sightings that

1. come from a camera that is opted in and not paused, whose coarse area's centre
   (``coarse_location``) is within the radius of the last-seen point: an indexed latitude band
   and longitude ranges in SQL (``geofence.bbox_where``, widened by the cell's reach, a superset
   of the fence), then the exact haversine test on those centres (``geofence.cameras_within``).
   Membership is decided on the public area, never the exact point: otherwise whether a small
   search reached a camera (its counts, a shared sighting) would place the camera inside its
   cell, finer than anyone but its owner may know (invariant 3, SECURITY.md);
2. ended at or after the last-seen time minus the slack (``geofence.earliest_sighting_time``),
   give the reported species a probability that is not negligible (``SPECIES_FLOOR``: the
   species head's call is evidence, never a wall), and were embedded by the query's model;

and FAISS is then asked to score *only those ids* (``VectorIndex.search`` with an
``IDSelectorBatch``): a sighting outside the fence is never scored, not even to be thrown away.
The FAISS call asks for the best ``k`` and doubles ``k`` until the k-th score falls below the
threshold, so every fenced sighting at or above the threshold is returned, however many.

Then (``scoring``): above-threshold sightings of one camera's one visit are merged into one
candidate, candidates are ranked by score, and the first ``MAX_ASKS_PER_SEARCH`` are the
consent requests.

Standing searches: ``rescore_sighting`` takes a newly stored sighting and the active searches
(plain values, stored by the domain layer) and says which of them it matches, applying the same
fence, window, species, model and threshold tests before any score is computed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
from sqlite_utils import Database

from embeddings.species import SPECIES_FLOOR, species_probability
from search_party.errors import NotFound
from search_party.search import geofence, scoring
from search_party.search.coarse_location import CELL_REACH_M, coarse_area
from search_party.search.geofence import SIGHTING_SLACK, Point
from search_party.search.query_photos import QueryPhotos
from search_party.store import storage
from search_party.store.db import from_db_time, to_db_time
from search_party.store.vector_index import VectorIndex

FIRST_K = 256  # the first FAISS request; a search rarely has more matches than this


@dataclass(frozen=True)
class Fence:
    """Where and since when a search looks: centre, radius (validated, capped), last-seen time."""

    center: Point
    radius_m: float
    last_seen: datetime
    slack: timedelta = SIGHTING_SLACK

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", geofence.parse_point(*self.center))
        object.__setattr__(self, "radius_m", geofence.parse_radius_m(self.radius_m))
        geofence.earliest_sighting_time(self.last_seen, self.slack)  # checks tz and slack

    @property
    def since(self) -> datetime:
        """The earliest end time a sighting may have to be scored."""
        return geofence.earliest_sighting_time(self.last_seen, self.slack)

    def contains(self, point: Point) -> bool:
        return bool(geofence.within_mask(self.center, self.radius_m, [point.lat], [point.lon])[0])


@lru_cache(maxsize=1 << 16)
def _area_centre(lat: float, lon: float) -> tuple[float, float]:
    """The centre of a camera's coarse area, cached: a camera's place rarely changes, and a search
    of a big city asks for a thousand of them (8 ms a search at 1M sightings uncached)."""
    centre = coarse_area(lat, lon).center
    return centre.lat, centre.lon


def fenced_cameras(db: Database, fence: Fence) -> np.ndarray:
    """Ids of the opted-in, unpaused cameras whose coarse area's centre is inside the fence,
    nearest first."""
    box = geofence.bounding_box(fence.center, fence.radius_m, reach_m=CELL_REACH_M)
    rows = db.execute(
        "SELECT id, lat, lon FROM cameras WHERE opted_in = 1 AND paused = 0 AND "
        + geofence.bbox_where("lat", "lon"), box.sql_params()).fetchall()
    if not rows:
        return np.zeros(0, np.int64)
    centres = np.array([_area_centre(lat, lon) for _, lat, lon in rows])
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    return geofence.cameras_within(fence.center, fence.radius_m, ids, centres[:, 0], centres[:, 1])


def fenced_sightings(db: Database, fence: Fence, model_version: str, species: str,
                     cameras: np.ndarray | None = None) -> np.ndarray:
    """Ids (sorted) of every sighting a search with this fence may score (module docstring);
    ``cameras`` are the fence's cameras when the caller already has them."""
    cameras = fenced_cameras(db, fence) if cameras is None else cameras
    if not len(cameras):
        return np.zeros(0, np.int64)
    # json_each keeps the statement one fixed shape however many cameras are fenced in, and
    # json_group_array hands back thousands of ids as one value instead of thousands of rows.
    # The unary + keeps p_dog and model_version off the planner's index choice: the covering
    # fence index (camera, end time) is the selective one, sightings_model is not.
    low, high = _p_dog_range(species)
    (ids,) = db.execute(
        "SELECT json_group_array(id) FROM sightings WHERE camera_id IN "
        "(SELECT value FROM json_each(?)) AND last_time >= ? AND +model_version = ? "
        "AND +p_dog BETWEEN ? AND ?",
        [json.dumps(cameras.tolist()), to_db_time(fence.since), model_version, low, high]).fetchone()
    return np.sort(np.array(json.loads(ids), dtype=np.int64))


def _p_dog_range(species: str) -> tuple[float, float]:
    """The P(dog) of sightings a search for ``species`` scores: its own species' probability at
    least the floor."""
    return (SPECIES_FLOOR, 1.0) if species == "dog" else (0.0, 1.0 - SPECIES_FLOOR)


def score_within(index: VectorIndex, vector: np.ndarray, allowed: np.ndarray,
                 threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """FAISS scores of the allowed sightings at or above ``threshold``, best first, as
    ``(ids, scores)``; nothing outside ``allowed`` is scored."""
    k = min(FIRST_K, len(allowed))
    while k:
        scores, ids = index.search(vector[None, :], k, allowed_ids=allowed)
        scores, ids = scores[0], ids[0]
        if scores[-1] < threshold or k == len(allowed):
            keep = (ids >= 0) & (scores >= threshold)
            return ids[keep], scores[keep]
        k = min(4 * k, len(allowed))
    return np.zeros(0, np.int64), np.zeros(0, np.float32)


def scored_sightings(db: Database, ids: np.ndarray,
                     scores: np.ndarray) -> list[scoring.ScoredSighting]:
    """Camera, time span and stored aggregate of the matched sightings (few: the matches only)."""
    by_id = dict(zip(ids.tolist(), scores.tolist()))
    out = []
    wanted = list(by_id)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for row in db.execute(
                "SELECT id, camera_id, first_time, last_time, vector FROM sightings WHERE id IN "
                f"({', '.join('?' * len(chunk))})", chunk):
            out.append(scoring.ScoredSighting(
                id=row[0], camera_id=row[1], first_time=from_db_time(row[2]),
                last_time=from_db_time(row[3]), score=by_id[row[0]],
                vector=storage.blob_to_vector(row[4])))
    return out


@dataclass(frozen=True)
class SearchResult:
    """What one search found: candidates (merged, best first) and how much it looked at."""

    candidates: list[scoring.Candidate]
    cameras: int  # opted-in cameras inside the fence
    fenced: int  # sightings inside the fence and window: the only ones scored
    matched: int  # fenced sightings at or above the threshold, before merging
    threshold: float
    max_asks: int = scoring.MAX_ASKS_PER_SEARCH

    @property
    def asks(self) -> list[scoring.Candidate]:
        """The candidates that become consent requests: the best ``max_asks``."""
        return self.candidates[:self.max_asks]


def find_candidates(db: Database, index: VectorIndex, query: QueryPhotos, fence: Fence, *,
                    threshold: float | None = None, cameras: np.ndarray | None = None,
                    allowed: np.ndarray | None = None) -> SearchResult:
    """Search the fence for the query's animal (module docstring).  ``threshold`` defaults to
    the calibrated one of the query's model (``scoring.threshold_for``).  Only what the index
    holds is scored: sync it first (``VectorIndex.open`` does); a sighting stored later reaches
    the search through ``rescore_sighting``.  ``cameras`` and ``allowed`` are the fence's
    cameras and sightings (``fenced_cameras``, ``fenced_sightings``) when the caller has them."""
    if index.model_version != query.model_version:
        raise ValueError(f"the index holds {index.model_version} vectors, the query is "
                         f"{query.model_version}: search an index of the query's model")
    threshold = scoring.threshold_for(query.model_version) if threshold is None else threshold
    cameras = fenced_cameras(db, fence) if cameras is None else cameras
    if allowed is None:
        allowed = fenced_sightings(db, fence, query.model_version, query.species, cameras)
    ids, scores = score_within(index, query.vector, allowed, threshold)
    scored = scored_sightings(db, ids, scores)
    candidates = scoring.merge_visits(scored, query.vectors,
                                      agree=scoring.same_visit_for(query.model_version))
    return SearchResult(candidates=candidates, cameras=len(cameras), fenced=len(allowed),
                        matched=len(scored), threshold=threshold)


# ---------------------------------------------------------------- standing searches


@dataclass(frozen=True)
class StandingSearch:
    """An active search as the domain layer stores it: its id, fence and query vectors."""

    id: int
    fence: Fence
    query: QueryPhotos
    vector: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vector", self.query.vector)


@dataclass(frozen=True)
class SearchHit:
    """A standing search that a new sighting matches."""

    search_id: int
    sighting_id: int
    score: float
    best_photo: int


def rescore_sighting(db: Database, sighting_id: int, searches: Iterable[StandingSearch], *,
                     threshold: float | None = None) -> list[SearchHit]:
    """Which of ``searches`` the newly stored sighting matches, best first.

    A search scores the sighting only if its camera is opted in, not paused and (by its coarse
    area's centre) inside the search's fence, the sighting ended after the search's window
    start, its species is likely enough and the model agrees; ``threshold`` defaults to the
    model's calibrated one.  Whether the hit joins a candidate the search already has is
    ``joins_visit`` (one visit, one request).
    """
    row = db.execute(
        "SELECT s.camera_id, s.last_time, s.p_dog, s.model_version, s.vector, c.lat, c.lon, "
        "c.opted_in, c.paused FROM sightings s JOIN cameras c ON c.id = s.camera_id "
        "WHERE s.id = ?", [sighting_id]).fetchone()
    if row is None:
        raise NotFound(f"sighting {sighting_id} does not exist")
    _, last_time, p_dog, model_version, blob, lat, lon, opted_in, paused = row
    if not opted_in or paused:
        return []
    ended, place = from_db_time(last_time), Point(*_area_centre(lat, lon))  # as fenced_cameras
    eligible = [s for s in searches
                if s.query.model_version == model_version
                and species_probability(p_dog, s.query.species) >= SPECIES_FLOOR
                and ended >= s.fence.since and s.fence.contains(place)]
    if not eligible:
        return []
    limit = scoring.threshold_for(model_version) if threshold is None else threshold
    vector = storage.blob_to_vector(blob)
    scores = np.stack([s.vector for s in eligible]) @ vector
    hits = [SearchHit(s.id, sighting_id, float(score), scoring.best_photo(s.query.vectors, vector))
            for s, score in zip(eligible, scores) if score >= limit]
    return sorted(hits, key=lambda h: (-h.score, h.search_id))


def joins_visit(db: Database, sighting_a: int, sighting_b: int) -> bool:
    """Whether two stored sightings are one dog's one visit to one camera (``scoring.same_visit``
    on their stored vectors), so a standing search's new hit joins the candidate it already asked
    about."""
    rows = {s.id: s for s in scored_sightings(db, np.array([sighting_a, sighting_b]), np.zeros(2))}
    if len(rows) != len({sighting_a, sighting_b}):
        raise NotFound(f"sighting {sighting_a} or {sighting_b} does not exist")
    (model,) = db.execute("SELECT model_version FROM sightings WHERE id = ?", [sighting_a]).fetchone()
    return scoring.same_visit(rows[sighting_a], rows[sighting_b], agree=scoring.same_visit_for(model))
