"""A simulated neighbourhood: how often a search finds the lost dog, at what cost to neighbours.

Built from an identity-labelled folder (the format of ``eval reid``, ``embeddings.reid_data``):

- cameras stand at random places around a random city (``CAMERA_DENSITY`` per km²), all opted in;
- every dog with two or more sequences gets lost at a random time within ``LOSS_SPAN`` at a
  random place in the city.  One of its sequences is kept back as the owner's photos (up to 5);
  each other sequence is one stop of a walk from the last-seen point (a heading that drifts,
  ``STEP_M`` between stops, ``STOP_GAP`` between them; ``geofence.destination_point``), filmed by
  the camera nearest the stop.  A sequence of more than four crops arrives as several sightings a
  few seconds apart, as a tracker splits one visit (the merge must make it one request again);
- every dog is a distractor for every other: their walks cross the same streets;
- each owner reports ``REPORT_DELAY`` after losing the dog, with the default 1 km radius.

Then time runs: clips arrive in time order and are stored in a real SQLite store
(``storage.save_clip_result``); a report runs ``matching.find_candidates`` on the real FAISS
index (synced from SQLite), and every sighting stored later is re-scored against the active
searches (``matching.rescore_sighting``), joining a request already made when it is the same
visit (``matching.joins_visit``).  The crops are the sightings' crops and the owners' photos are
the kept-back crops, embedded once with the real embedder; the folder's crops are already dog
crops, so no detector runs (``query_from_photos`` is tested on its own).

Reported per search: hit@1 / hit@5 (one of the dog's own sightings is in the first 1 / 5
consent requests, in the order they were sent), consent requests sent (the neighbours' burden),
and recall: the share of the dog's sightings inside its fence and window that reached a request.
"""

from __future__ import annotations

import math
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from embeddings.embedder import Embedder
from embeddings.images import load_rgb
from embeddings.redact import thumbnail_jpeg
from embeddings.reid_data import LabelledImage
from embeddings.vectors import aggregate
from search_party.community import accounts
from search_party.search import geofence, matching, scoring
from search_party.search.geofence import Point
from search_party.search.query_photos import MAX_PHOTOS, QueryPhotos
from search_party.store import storage
from search_party.store.clip_results import ClipResult, IngestStats, SightingDraft
from search_party.store.db import open_db
from search_party.store.index_kinds import new_index
from search_party.store.vector_index import VectorIndex

CITY_RADIUS_M = 2_000.0  # dogs get lost within this distance of the city centre
CAMERA_MARGIN_M = 1_500.0  # cameras reach this far beyond it, so every walk has cameras around
CAMERA_DENSITY = 40.0  # opted-in cameras per km²
SEARCH_RADIUS_M = geofence.DEFAULT_RADIUS_M
LOSS_SPAN = timedelta(hours=48)
REPORT_DELAY = timedelta(minutes=45)
FIRST_STOP = (timedelta(minutes=5), timedelta(minutes=60))  # after being lost
STOP_GAP = (timedelta(minutes=10), timedelta(minutes=90))
STEP_M = (80.0, 400.0)
HEADING_DRIFT_DEG = 50.0
CROPS_PER_SIGHTING = 4  # the pipeline keeps this many crops per track
MAX_STOPS = 8  # a dog with more sequences is filmed at its first 8 stops only
FRAGMENT_GAP = timedelta(seconds=8)  # between the sightings one visit is split into
UPLOAD_DELAY = timedelta(minutes=5)  # a clip is stored this long after it was filmed
EPOCH = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Stop:
    """One visit of a dog to a camera: the crops of one sequence, split into sightings."""

    camera: int  # index into Neighbourhood.cameras
    time: datetime
    sightings: tuple[tuple[int, ...], ...]  # image indices per sighting


@dataclass(frozen=True)
class Walk:
    identity: str
    lost_at: datetime
    last_seen: Point
    owner_photos: tuple[int, ...]  # image indices
    stops: tuple[Stop, ...]


@dataclass(frozen=True)
class Neighbourhood:
    center: Point
    cameras: tuple[Point, ...]
    walks: tuple[Walk, ...]


@dataclass
class SearchEvalResult:
    searches: int
    hit1: float
    hit5: float
    asks_per_search: float
    recall: float
    threshold: float
    false_asks_per_search: float  # requests about sightings that were not the lost dog
    model_version: str
    dogs: int = 0
    cameras: int = 0
    sightings: int = 0
    in_fence_share: float = 0.0  # of all the searched dogs' sightings, inside their fence
    scores: list[tuple[float, bool]] = field(default_factory=list, repr=False)  # per request

    def as_json(self) -> dict:
        return {"searches": self.searches, "hit1": round(self.hit1, 4), "hit5": round(self.hit5, 4),
                "asks_per_search": round(self.asks_per_search, 3), "recall": round(self.recall, 4)}


def _random_point(rng: np.random.Generator, center: Point, radius_m: float) -> Point:
    """Uniform over the disk (sqrt of a uniform radius fraction)."""
    return geofence.destination_point(center, float(rng.uniform(0, 360)),
                                      float(radius_m * math.sqrt(rng.uniform())))


def _minutes(rng: np.random.Generator, span: tuple[timedelta, timedelta]) -> timedelta:
    low, high = (s.total_seconds() for s in span)
    return timedelta(seconds=float(rng.uniform(low, high)))


def searchable_dogs(items: list[LabelledImage]) -> list[str]:
    """The dogs with images from two or more sequences: one kept back, the others filmed."""
    sequences: dict[str, set[str]] = defaultdict(set)
    for item in items:
        sequences[item.identity].add(item.sequence)
    return sorted(d for d, seqs in sequences.items() if len(seqs) >= 2)


def plan_neighbourhood(items: list[LabelledImage], seed: int = 0) -> Neighbourhood:
    """Cameras and one walk per dog with two or more sequences (module docstring)."""
    rng = np.random.default_rng(seed)
    center = Point(float(rng.uniform(-55, 60)), float(rng.uniform(-180, 180)))
    area_km2 = math.pi * ((CITY_RADIUS_M + CAMERA_MARGIN_M) / 1000) ** 2
    cameras = tuple(_random_point(rng, center, CITY_RADIUS_M + CAMERA_MARGIN_M)
                    for _ in range(int(CAMERA_DENSITY * area_km2)))
    cam_lat = np.array([c.lat for c in cameras])
    cam_lon = np.array([c.lon for c in cameras])
    sequences: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, item in enumerate(items):
        sequences[item.identity][item.sequence].append(i)
    walks = []
    for identity in sorted(sequences):
        seqs = [sequences[identity][s] for s in sorted(sequences[identity])]
        if len(seqs) < 2:
            continue
        order = rng.permutation(len(seqs))
        kept = seqs[order[0]]
        owner = tuple(int(i) for i in rng.permutation(kept)[:MAX_PHOTOS])
        lost_at = EPOCH + LOSS_SPAN * float(rng.uniform())
        start = _random_point(rng, center, CITY_RADIUS_M)
        here, heading, when = start, float(rng.uniform(0, 360)), lost_at + _minutes(rng, FIRST_STOP)
        stops = []
        for j in order[1:MAX_STOPS + 1]:
            heading += float(rng.normal(0, HEADING_DRIFT_DEG))
            here = geofence.destination_point(here, heading, float(rng.uniform(*STEP_M)))
            camera = int(np.argmin(geofence.haversine_m(here.lat, here.lon, cam_lat, cam_lon)))
            crops = [int(i) for i in rng.permutation(seqs[j])]
            parts = tuple(tuple(crops[k:k + CROPS_PER_SIGHTING])
                          for k in range(0, len(crops), CROPS_PER_SIGHTING))
            stops.append(Stop(camera, when, parts))
            when += _minutes(rng, STOP_GAP)
        walks.append(Walk(identity, lost_at, start, owner, tuple(stops)))
    return Neighbourhood(center, cameras, tuple(walks))


@dataclass(frozen=True)
class EmbeddedFolder:
    """A labelled folder embedded once: vectors and thumbnails by image index."""

    items: list[LabelledImage]
    vectors: np.ndarray  # (n, dim) unit rows
    thumbnails: list[bytes]
    model_version: str


def embed_folder(items: list[LabelledImage], embedder: Embedder,
                 progress: Callable[[int, int], None] | None = None,
                 batch: int = 128) -> EmbeddedFolder:
    """Embed every image (in batches, so memory stays small at any size)."""
    vectors: list[np.ndarray] = []
    thumbnails: list[bytes] = []
    for start in range(0, len(items), batch):
        crops = [load_rgb(it.path) for it in items[start:start + batch]]
        vectors.append(embedder.predict(crops))
        thumbnails.extend(thumbnail_jpeg(c, []) for c in crops)
        if progress is not None:
            progress(min(start + batch, len(items)), len(items))
    dim = embedder.dim
    stacked = np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)
    return EmbeddedFolder(items, stacked, thumbnails, embedder.version)


@dataclass(frozen=True)
class Evidence:
    """How much of each side a search uses: the owner's first ``photos`` photos and each
    sighting's first ``crops`` crops (None: all of them, as the product does).  One photo against
    one crop is a search without fusion; ``FUSION`` lists what ``eval search --fusion`` compares."""

    photos: int | None = None
    crops: int | None = None

    @property
    def name(self) -> str:
        return f"{self.photos or 'all'} photo(s) × {self.crops or 'all'} crop(s)"


FUSION = (Evidence(1, 1), Evidence(1, None), Evidence(None, 1), Evidence(None, None))


@dataclass
class _Request:
    """A consent request the simulation sent, and the sightings it covers (grows with joins)."""

    score: float
    best: int  # the sighting shown to the camera's owner
    sighting_ids: set[int]


@dataclass
class _Clip:
    time: datetime  # when it is stored
    camera: int
    dog: int
    drafts: list[SightingDraft]


def _clips(hood: Neighbourhood, data: EmbeddedFolder, evidence: Evidence) -> list[_Clip]:
    clips = []
    for d, walk in enumerate(hood.walks):
        for stop in walk.stops:
            drafts = []
            for n, part in enumerate(stop.sightings):
                first = stop.time + n * FRAGMENT_GAP
                crops = data.vectors[list(part[:evidence.crops])]
                # Every image is a dog: the simulation measures who, not which species.
                drafts.append(SightingDraft(
                    label="dog", p_dog=1.0, first_time=first, last_time=first + FRAGMENT_GAP / 2,
                    box=(0.0, 0.0, 1.0, 1.0), score=0.9, thumbnail_jpeg=data.thumbnails[part[0]],
                    vector=aggregate(crops), crop_vectors=crops, model_version=data.model_version))
            clips.append(_Clip(stop.time + UPLOAD_DELAY, stop.camera, d, drafts))
    return sorted(clips, key=lambda c: (c.time, c.camera, c.dog))


def _stats() -> IngestStats:
    return IngestStats(clip_seconds=0.0, wall_seconds=0.0, frames_decoded=0, frames_motion_checked=0,
                       frames_detected=0, crops_embedded=0, ms_per_stage={}, width=0, height=0,
                       codec="simulated")


def _open_index(db, path: Path, data: EmbeddedFolder, clips: list[_Clip], kind: str) -> VectorIndex:
    """The production index (``VectorIndex.open``), or an empty one of another kind, trained on
    the sightings to come (sq8 learns each dimension's range), that sync then fills."""
    dim = data.vectors.shape[1]
    if kind == "flat":
        return VectorIndex.open(db, path, data.model_version, dim)
    sample = np.stack([d.vector for clip in clips for d in clip.drafts])
    return VectorIndex(path, data.model_version, dim, new_index(kind, dim, sample), np.zeros(0, np.int64))


def simulate(hood: Neighbourhood, data: EmbeddedFolder, workdir: Path,
             threshold: float | None = None, index_kind: str = "flat",
             evidence: Evidence = Evidence()) -> SearchEvalResult:
    """Run time forward through the neighbourhood in a real store under ``workdir``; the index is
    ``index_kind`` (``index_kinds``), flat being what ``vector_index`` builds at this size;
    ``evidence`` limits the photos and crops each side is fused from."""
    threshold = scoring.threshold_for(data.model_version) if threshold is None else threshold
    db = open_db(workdir / "search_eval.db")
    owner = accounts.create_user(db, "neighbours@example.org")
    with db.conn:  # one transaction for the cameras: the simulation's set-up, not what it measures
        db.conn.executemany(
            "INSERT INTO cameras (owner_id, name, lat, lon, opted_in, opted_in_at, paused, "
            "retention_days, created) VALUES (?, '', ?, ?, 1, '2025-01-01T00:00:00.000000Z', 0, 30, "
            "'2025-01-01T00:00:00.000000Z')", [(owner.id, c.lat, c.lon) for c in hood.cameras])
    camera_ids = [r[0] for r in db.execute("SELECT id FROM cameras ORDER BY id")]
    clips = _clips(hood, data, evidence)
    index = _open_index(db, workdir / "sightings.faiss", data, clips, index_kind)

    fences = [matching.Fence(w.last_seen, SEARCH_RADIUS_M, w.lost_at) for w in hood.walks]
    reports = sorted(range(len(hood.walks)), key=lambda d: hood.walks[d].lost_at)
    requests: dict[int, list[_Request]] = defaultdict(list)
    true_ids: dict[int, set[int]] = defaultdict(set)  # dog -> its sighting ids inside its fence
    all_true = in_fence = 0
    standing: list[matching.StandingSearch] = []
    next_report = 0

    def report_due(before: datetime | None) -> None:
        nonlocal next_report
        while next_report < len(reports):
            d = reports[next_report]
            at = hood.walks[d].lost_at + REPORT_DELAY
            if before is not None and at > before:
                return
            walk = hood.walks[d]
            query = QueryPhotos("dog", data.vectors[list(walk.owner_photos[:evidence.photos])],
                                data.model_version)
            index.sync(db)
            result = matching.find_candidates(db, index, query, fences[d], threshold=threshold)
            for candidate in result.asks:
                requests[d].append(_Request(candidate.score, candidate.sighting_id,
                                            set(candidate.sighting_ids)))
            standing.append(matching.StandingSearch(d, fences[d], query))
            next_report += 1

    for n, clip in enumerate(clips):
        report_due(clip.time)
        clip_row, _ = storage.create_clip(db, camera_ids[clip.camera], f"{n:064x}", "simulated.mp4", 1)
        storage.claim_clip(db, clip_row.id, "search-eval")
        ids = storage.save_clip_result(db, clip_row.id, ClipResult(clip.drafts, _stats()), "search-eval")
        if geofence.distance_m(hood.cameras[clip.camera], fences[clip.dog].center) <= SEARCH_RADIUS_M:
            true_ids[clip.dog].update(ids)
            in_fence += len(ids)
        all_true += len(ids)
        for sighting_id in ids:
            for hit in matching.rescore_sighting(db, sighting_id, standing, threshold=threshold):
                mine = requests[hit.search_id]
                joined = next((r for r in mine if matching.joins_visit(db, r.best, sighting_id)), None)
                if joined is not None:
                    joined.sighting_ids.add(sighting_id)
                elif len(mine) < scoring.MAX_ASKS_PER_SEARCH:
                    mine.append(_Request(hit.score, sighting_id, {sighting_id}))
    report_due(None)

    searches = len(hood.walks)
    hit1 = hit5 = asks = false_asks = 0
    found = findable = 0
    scores: list[tuple[float, bool]] = []
    for d in range(searches):
        mine = requests[d]
        own = [bool(r.sighting_ids & true_ids[d]) for r in mine]
        hit1 += any(own[:1])
        hit5 += any(own[:5])
        asks += len(mine)
        false_asks += own.count(False)
        scores.extend((r.score, o) for r, o in zip(mine, own))
        reached = set().union(*(r.sighting_ids for r in mine)) if mine else set()
        found += len(reached & true_ids[d])
        findable += len(true_ids[d])
    return SearchEvalResult(
        searches=searches, hit1=hit1 / max(searches, 1), hit5=hit5 / max(searches, 1),
        asks_per_search=asks / max(searches, 1), recall=found / max(findable, 1),
        threshold=threshold, false_asks_per_search=false_asks / max(searches, 1),
        model_version=data.model_version, dogs=searches,
        cameras=len(hood.cameras), sightings=all_true,
        in_fence_share=in_fence / max(all_true, 1), scores=scores)


def evaluate(data: EmbeddedFolder, seed: int = 0, threshold: float | None = None,
             index_kind: str = "flat", evidence: Evidence = Evidence()) -> SearchEvalResult:
    """Plan a neighbourhood from the embedded folder and simulate it in a temporary store."""
    hood = plan_neighbourhood(data.items, seed)
    with tempfile.TemporaryDirectory(prefix="search-eval-") as tmp:
        return simulate(hood, data, Path(tmp), threshold, index_kind, evidence)


def _mean(runs: list[SearchEvalResult]) -> SearchEvalResult:
    """Several seeds' results averaged (searches summed)."""
    first = runs[0]
    return SearchEvalResult(
        searches=sum(r.searches for r in runs), hit1=float(np.mean([r.hit1 for r in runs])),
        hit5=float(np.mean([r.hit5 for r in runs])),
        asks_per_search=float(np.mean([r.asks_per_search for r in runs])),
        recall=float(np.mean([r.recall for r in runs])), threshold=first.threshold,
        false_asks_per_search=float(np.mean([r.false_asks_per_search for r in runs])),
        model_version=first.model_version, dogs=first.dogs, cameras=first.cameras,
        sightings=first.sightings,
        in_fence_share=float(np.mean([r.in_fence_share for r in runs])))


def calibrate(data: EmbeddedFolder, seeds: list[int],
              false_ask_budget: float = scoring.FALSE_ASK_BUDGET,
              grid: np.ndarray | None = None) -> tuple[float, list[SearchEvalResult]]:
    """The lowest threshold on ``grid`` whose false consent requests per search, averaged over
    ``seeds``, stay within ``false_ask_budget`` (scoring's docstring says why the lowest); also
    returns each threshold's averaged result, from the highest threshold down to the first one
    over the budget."""
    grid = np.round(np.arange(0.9, 0.3, -0.025), 3) if grid is None else np.sort(grid)[::-1]
    rows: list[SearchEvalResult] = []
    chosen = float(grid[0])
    for threshold in grid:
        mean = _mean([evaluate(data, seed, float(threshold)) for seed in seeds])
        rows.append(mean)
        if mean.false_asks_per_search > false_ask_budget:
            break
        chosen = float(threshold)
    return chosen, rows


@dataclass(frozen=True)
class SameVisitRow:
    bar: float
    same_sequence_below: float  # pairs of one dog's crops in one sequence the bar would split
    other_dogs_at_or_above: float  # pairs of two dogs' crops the bar would let agree
    pairs: tuple[int, int]  # (same-sequence pairs, other-dog pairs)


def same_visit_table(data: EmbeddedFolder, bars: np.ndarray) -> list[SameVisitRow]:
    """What each same-visit bar (scoring's "One candidate per dog per camera visit") does to
    single crops: the share of one dog's same-sequence pairs below it (one visit split in two
    requests) and of two different dogs' pairs at or above it (two dogs that could be merged)."""
    sims = data.vectors @ data.vectors.T
    ids = np.array([it.identity for it in data.items])
    seqs = np.array([it.sequence for it in data.items])
    upper = np.triu(np.ones_like(sims, dtype=bool), k=1)
    same = upper & (ids[:, None] == ids[None, :]) & (seqs[:, None] == seqs[None, :])
    other = upper & (ids[:, None] != ids[None, :])
    if not same.any() or not other.any():
        raise ValueError("need two crops of one dog in one sequence and crops of two dogs")
    return [SameVisitRow(float(bar), float((sims[same] < bar).mean()), float((sims[other] >= bar).mean()),
                         (int(same.sum()), int(other.sum()))) for bar in bars]

