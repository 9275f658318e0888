"""Search latency and memory at 10k–1M sightings, geofence included, beside a naive search.

The store is built the fast way (bulk inserts in a few transactions, the index filled straight
from the generated vectors) but it is the real schema, the real FAISS index class and the real
search path: every timed search is ``matching.find_candidates`` (SQL fence, FAISS restricted to
the fenced ids, merge), with 5 query photos and a 2 km radius.

The city (``CityShape``) has a realistic density, kept the same at every size so a bigger store
is a bigger city, not a denser one: 50 opted-in cameras per km² (a suburb of ~1,500 homes per
km², ~30 % with an outdoor camera, ~10 % of those opted in), each filming 5 dogs a day, 30 days
kept.  Searches start anywhere in the city with a last-seen time up to 72 hours ago.

The sightings are synthetic, but their vectors come from real embeddings: each is a random
mixture of two real crop vectors of MPDD dogs (embedded with the real embedder) plus a little
noise, so scores spread as real dog vectors do.  Every tenth dog is held out of the city and
searched for, so a match is a look-alike, as it is for almost every sighting in a real fence
(without the hold-out the city would hold thousands of near-copies of each lost dog).  Thumbnails
are one small real JPEG shared by all rows and no per-crop vectors are stored: the search path reads neither.

Naive baseline: one FAISS search over *every* sighting (top ``NAIVE_K``), then the fence and
window applied to those hits in SQL — the "search everything, then filter by distance" design,
which also misses any fenced match that did not make the global top-k.

The real path (``run_reports``): the index is written to its file as the server keeps it, the
in-memory one is let go, and each lost report (its query vectors stored as the wizard stores
them) is searched exactly as the web process searches it: ``VectorIndex.for_process`` (the first
report maps the file, every one syncs) and ``standing_searches.search_report`` up to the consent
requests stored.  Between reports, untimed, a camera stores a clip's sightings and retention
deletes one, so every sync has real work.  Beside it: the FAISS search alone for the same fence
(``matching.score_within``), and the process's resident memory, anonymous and file-backed (the
mapped index is file-backed: page cache, shared with every other process mapping it).
"""

from __future__ import annotations

import gc
import io
import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image
from sqlite_utils import Database

from embeddings.vectors import unit_rows
from search_party.community import standing_searches
from search_party.search import geofence, matching, scoring
from search_party.search.geofence import Point
from search_party.search.query_photos import QueryPhotos
from search_party.store.db import open_db, to_db_time
from search_party.store.index_kinds import new_index
from search_party.store.vector_index import VectorIndex

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
CITY_CENTER = Point(52.2053, 0.1218)
SEARCH_RADIUS_M = 2_000.0
PHOTOS = 5
NAIVE_K = 1_000
NAIVE_SEARCHES = 30  # a full scan of a million vectors takes a second: fewer runs suffice
BATCH = 10_000  # rows generated, stored and indexed at a time: bounds the build's own memory
NOISE = 0.3  # norm of the noise added to each mixture, before normalising
STORED_PER_REPORT = 5  # sightings a camera stores between two reports (one clip's worth) ...
DELETED_PER_REPORT = 1  # ... and those retention deletes


@dataclass(frozen=True)
class CityShape:
    cameras_per_km2: float = 50.0
    dogs_per_camera_day: float = 5.0
    retention_days: int = 30
    max_search_age: timedelta = timedelta(hours=72)

    def cameras_for(self, sightings: int) -> int:
        return max(1, round(sightings / (self.dogs_per_camera_day * self.retention_days)))

    def radius_m(self, cameras: int) -> float:
        return 1000.0 * math.sqrt(cameras / self.cameras_per_km2 / math.pi)


@dataclass
class BenchStore:
    db: Database
    index: VectorIndex
    city_radius_m: float
    cameras: int
    build_s: float
    base: np.ndarray  # the real vectors the sightings are mixed from
    thumb: bytes
    shape: CityShape


def _mixtures(rng: np.random.Generator, base: np.ndarray, n: int) -> np.ndarray:
    """n unit vectors, each w·a + (1−w)·b + noise for two random real vectors a, b."""
    a = base[rng.integers(len(base), size=n)]
    b = base[rng.integers(len(base), size=n)]
    w = rng.uniform(0.5, 1.0, size=(n, 1)).astype(np.float32)
    noise = rng.standard_normal((n, base.shape[1]), dtype=np.float32)
    noise *= NOISE / math.sqrt(base.shape[1])
    return unit_rows(w * a + (1 - w) * b + noise)


def _db_times(moments: np.ndarray) -> list[str]:
    """datetime64[us] (UTC) -> the store's fixed-width text, vectorised."""
    return [t + "Z" for t in np.datetime_as_string(moments, unit="us")]


def small_jpeg(rgb: np.ndarray, side: int = 48) -> bytes:
    """A real crop as a tiny JPEG: the one thumbnail every bench row shares."""
    img = Image.fromarray(rgb)
    img.thumbnail((side, side))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=80)
    return out.getvalue()


def build_store(workdir: Path, sightings: int, base: np.ndarray, model_version: str, thumb: bytes, *,
                index_kind: str = "flat", seed: int = 0, shape: CityShape = CityShape(),
                progress: Callable[[str], None] | None = None) -> BenchStore:
    """A city of ``sightings`` sightings in a real store under ``workdir`` (module docstring)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    db = open_db(workdir / "bench.db")
    db.execute("PRAGMA synchronous = OFF")  # a throw-away store: no need to survive a power cut
    n_cams = shape.cameras_for(sightings)
    city_radius = shape.radius_m(n_cams)
    created = to_db_time(NOW - timedelta(days=shape.retention_days + 1))
    with db.conn:
        owner = db.execute("INSERT INTO users (email, created) VALUES ('bench@example.org', ?)",
                           [created]).lastrowid
        places = [geofence.destination_point(CITY_CENTER, float(rng.uniform(0, 360)),
                                             float(city_radius * math.sqrt(rng.uniform())))
                  for _ in range(n_cams)]
        db.conn.executemany(
            "INSERT INTO cameras (id, owner_id, lat, lon, opted_in, opted_in_at, paused, "
            "retention_days, created) VALUES (?, ?, ?, ?, 1, ?, 0, ?, ?)",
            [(i + 1, owner, p.lat, p.lon, created, shape.retention_days, created)
             for i, p in enumerate(places)])
        db.conn.executemany(
            "INSERT INTO clips (id, camera_id, sha256, filename, size_bytes, status, created, updated) "
            "VALUES (?, ?, ?, 'bench.mp4', 1, 'done', ?, ?)",
            [(i + 1, i + 1, f"{i + 1:064x}", created, created) for i in range(n_cams)])
    dim = base.shape[1]
    index = new_index(index_kind, dim, _mixtures(rng, base, min(sightings, 20_000)))
    # Rows go in camera order so the fence index is written sequentially.
    camera_of = np.sort(rng.integers(1, n_cams + 1, size=sightings))
    next_id = 1
    for start in range(0, sightings, BATCH):
        n = min(BATCH, sightings - start)
        ids, vectors = _insert_sightings(db, rng, base, camera_of[start:start + n], next_id, model_version,
                                         thumb, shape)
        index.add_with_ids(vectors, ids)
        next_id += n
        if progress is not None:
            progress(f"{start + n:,} of {sightings:,} sightings stored and indexed")
    # A flat limit that keeps the chosen kind as the store grows (opening never rebuilds it).
    vector_index = VectorIndex(workdir / "bench.faiss", model_version, dim, index,
                               np.arange(1, next_id, dtype=np.int64),
                               flat_limit=2 * sightings if index_kind == "flat" else 0, through=next_id - 1)
    return BenchStore(db, vector_index, city_radius, n_cams, time.perf_counter() - started, base, thumb,
                      shape)


def _insert_sightings(db: Database, rng: np.random.Generator, base: np.ndarray, cameras: np.ndarray,
                      first_id: int, model_version: str, thumb: bytes,
                      shape: CityShape) -> tuple[np.ndarray, np.ndarray]:
    """Store one sighting per entry of ``cameras`` (ids from ``first_id``), filmed in the kept
    days before NOW; returns their ids and vectors."""
    n = len(cameras)
    vectors = _mixtures(rng, base, n)
    span_us = shape.retention_days * 86_400 * 1_000_000
    now_us = np.datetime64(NOW.replace(tzinfo=None), "us")
    first = now_us - rng.integers(0, span_us, size=n).astype("timedelta64[us]")
    last = first + rng.integers(2_000_000, 60_000_000, size=n).astype("timedelta64[us]")
    firsts, lasts = _db_times(first), _db_times(last)
    blobs = [v.astype("<f4").tobytes() for v in vectors]
    cams = [int(c) for c in cameras]
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    with db.conn:
        db.conn.executemany(
            "INSERT INTO sightings (id, camera_id, clip_id, label, first_time, last_time, box_x1, "
            "box_y1, box_x2, box_y2, score, thumbnail, vector, model_version, created) "
            "VALUES (?, ?, ?, 'dog', ?, ?, 0, 0, 1, 1, 0.9, ?, ?, ?, ?)",
            zip(ids.tolist(), cams, cams, firsts, lasts, [thumb] * n, blobs,
                [model_version] * n, firsts))
    return ids, vectors


@dataclass(frozen=True)
class BenchSearch:
    query: QueryPhotos
    fence: matching.Fence


def held_out(identities: np.ndarray) -> np.ndarray:
    """Mask of the crops of every tenth dog (sorted by id, from the first): searched for, never
    part of the city."""
    dogs = np.unique(identities)
    return np.isin(identities, dogs[::10])


def plan_searches(base: np.ndarray, identities: np.ndarray, model_version: str, store: BenchStore,
                  count: int, seed: int = 1, shape: CityShape = CityShape()) -> list[BenchSearch]:
    """Searches for real dogs (5 photos each: their real vectors plus the same noise as the
    sightings) from random places in the city, last seen up to 72 hours ago.  Pass the held-out
    dogs' vectors (``held_out``)."""
    rng = np.random.default_rng(seed)
    dogs = np.unique(identities)
    out = []
    for _ in range(count):
        dog = rng.choice(dogs)
        rows = rng.choice(np.flatnonzero(identities == dog), size=PHOTOS, replace=True)
        noise = rng.standard_normal((PHOTOS, base.shape[1]), dtype=np.float32)
        photos = unit_rows(base[rows] + noise * NOISE / math.sqrt(base.shape[1]))
        center = geofence.destination_point(CITY_CENTER, float(rng.uniform(0, 360)),
                                            float(store.city_radius_m * math.sqrt(rng.uniform())))
        age = timedelta(seconds=float(rng.uniform(0, shape.max_search_age.total_seconds())))
        out.append(BenchSearch(QueryPhotos("dog", photos, model_version),
                               matching.Fence(center, SEARCH_RADIUS_M, NOW - age)))
    return out


def naive_search(store: BenchStore, search: BenchSearch) -> list[int]:
    """Score everything, then keep the hits inside the fence and window (module docstring)."""
    scores, ids = store.index.search(search.query.vector[None, :], NAIVE_K)
    hits = [int(i) for i in ids[0] if i >= 0]
    rows = store.db.execute(
        "SELECT s.id, c.lat, c.lon FROM sightings s JOIN cameras c ON c.id = s.camera_id "
        "WHERE s.id IN (SELECT value FROM json_each(?)) AND s.last_time >= ? AND c.opted_in = 1 "
        "AND c.paused = 0", [f"[{','.join(map(str, hits))}]", to_db_time(search.fence.since)]).fetchall()
    if not rows:
        return []
    ids_in, lats, lons = (np.array(c) for c in zip(*rows))
    return ids_in[geofence.within_mask(search.fence.center, search.fence.radius_m, lats, lons)].tolist()


def peak_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(store: BenchStore, searches: list[BenchSearch], warmup: int = 5) -> dict:
    """Time every search (after ``warmup`` untimed ones) with the geofenced path, and the first
    ``NAIVE_SEARCHES`` with the naive one; returns the figures the command prints.

    Beside wall time, each geofenced search's CPU time (``time.process_time``) is kept: on a
    machine shared with other work the wall time measures the neighbours too, while the CPU time
    of a single-threaded search is what it takes on a core of its own."""
    for s in searches[:warmup]:
        matching.find_candidates(store.db, store.index, s.query, s.fence)
    timed, cpu, fenced, matched = [], [], [], []
    for s in searches:
        t0, c0 = time.perf_counter(), time.process_time()
        result = matching.find_candidates(store.db, store.index, s.query, s.fence)
        timed.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        fenced.append(result.fenced)
        matched.append(result.matched)
    naive = []
    for s in searches[:NAIVE_SEARCHES]:
        t0 = time.perf_counter()
        naive_search(store, s)
        naive.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": float(np.percentile(timed, 50)), "p95_ms": float(np.percentile(timed, 95)),
        "cpu_p50_ms": float(np.percentile(cpu, 50)), "cpu_p95_ms": float(np.percentile(cpu, 95)),
        "naive_p50_ms": float(np.percentile(naive, 50)), "naive_p95_ms": float(np.percentile(naive, 95)),
        "fenced_mean": float(np.mean(fenced)), "fenced_max": int(np.max(fenced)),
        "matched_mean": float(np.mean(matched)), "searches": len(searches),
    }


def memory_mb() -> dict[str, float]:
    """The process's resident memory now: all of it, anonymous (its own heap) and file-backed
    (mapped files such as the index, shared through the page cache), in MB (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith(("VmRSS", "RssAnon", "RssFile")))
    kib = {name: float(value.split()[0]) for name, value in fields.items()}
    return {"rss": kib["VmRSS"] / 1024, "anon": kib["RssAnon"] / 1024, "file": kib["RssFile"] / 1024}


def add_lost_report(db: Database, search: BenchSearch, thumb: bytes, number: int) -> int:
    """A lost report with its query vectors stored as the report wizard stores them (one photo
    row and one vector per photo), by a new owner; returns its id."""
    created = to_db_time(NOW)
    with db.conn:
        owner = db.execute("INSERT INTO users (email, created) VALUES (?, ?)",
                           [f"owner{number}@bench.invalid", created]).lastrowid
        report = db.execute(
            "INSERT INTO lost_reports (owner_id, pet_name, species, lat, lon, last_seen, radius_m, "
            "expires, submission_key, created, updated) VALUES (?, 'Bench', 'dog', ?, ?, ?, ?, ?, ?, ?, ?)",
            [owner, search.fence.center.lat, search.fence.center.lon, to_db_time(search.fence.last_seen),
             search.fence.radius_m, to_db_time(NOW + timedelta(days=3)), f"bench-{number}", created,
             created]).lastrowid
        for position, vector in enumerate(search.query.vectors):
            photo = db.execute(
                "INSERT INTO report_photos (lost_report_id, position, image, box_x1, box_y1, box_x2, "
                "box_y2, label) VALUES (?, ?, ?, 0, 0, 1, 1, 'dog')", [report, position, thumb]).lastrowid
            db.execute("INSERT INTO query_vectors (photo_id, model_version, vector) VALUES (?, ?, ?)",
                       [photo, search.query.model_version, vector.astype("<f4").tobytes()])
    assert isinstance(report, int)
    return report


def _ingest_and_retention(store: BenchStore, rng: np.random.Generator) -> None:
    """What the worker does between two reports: one camera's clip stores a few sightings, and
    retention deletes the oldest one (through the deletion log's trigger, as in production)."""
    (last,) = store.db.execute("SELECT max(id) FROM sightings").fetchone()
    camera = rng.integers(1, store.cameras + 1, size=STORED_PER_REPORT)
    _insert_sightings(store.db, rng, store.base, camera, last + 1, store.index.model_version, store.thumb,
                      store.shape)
    with store.db.conn:
        store.db.execute("DELETE FROM sightings WHERE id IN (SELECT id FROM sightings ORDER BY id LIMIT ?)",
                         [DELETED_PER_REPORT])


def run_reports(store: BenchStore, searches: list[BenchSearch], seed: int = 2) -> dict:
    """The real path of every search, as a running server takes it (module docstring): saves the
    index file and lets the in-memory index go first.  Returns the figures the command prints."""
    rng = np.random.default_rng(seed)
    model_version, dim, flat_limit = store.index.model_version, store.index.dim, store.index.flat_limit
    path = store.index.path
    store.index.save()
    store.index = VectorIndex(path, model_version, dim, new_index("flat", dim, np.zeros((0, dim), np.float32)),
                              np.zeros(0, np.int64))  # the built one's memory goes back
    gc.collect()
    before = memory_mb()
    threshold = scoring.threshold_for(model_version)
    timed, cpu, faiss_ms, faiss_cpu, memory, asked = [], [], [], [], [], 0
    for number, search in enumerate(searches, start=1):
        report_id = add_lost_report(store.db, search, store.thumb, number)
        _ingest_and_retention(store, rng)
        t0, c0 = time.perf_counter(), time.process_time()
        index = VectorIndex.for_process(store.db, path, model_version, dim, flat_limit=flat_limit)
        run = standing_searches.search_report(store.db, report_id, index, now=NOW)
        timed.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        asked += len(run.asked)
        allowed = matching.fenced_sightings(store.db, search.fence, model_version, search.query.species)
        t0, c0 = time.perf_counter(), time.process_time()
        matching.score_within(index, search.query.vector, allowed, threshold)
        faiss_ms.append((time.perf_counter() - t0) * 1000)
        faiss_cpu.append((time.process_time() - c0) * 1000)
        memory.append(memory_mb())
    store.index = index
    return {
        "reports": len(timed), "first_report_ms": timed[0],
        "report_p50_ms": float(np.percentile(timed, 50)), "report_p95_ms": float(np.percentile(timed, 95)),
        "report_cpu_p50_ms": float(np.percentile(cpu, 50)), "report_cpu_p95_ms": float(np.percentile(cpu, 95)),
        "faiss_p50_ms": float(np.percentile(faiss_ms, 50)), "faiss_p95_ms": float(np.percentile(faiss_ms, 95)),
        "faiss_cpu_p95_ms": float(np.percentile(faiss_cpu, 95)),
        "asked_per_report": asked / len(timed), "memory_before": before, "memory_first": memory[0],
        "memory_tenth": memory[min(9, len(memory) - 1)], "memory_last": memory[-1],
        "index_status": index.status, "side_index": len(index.delta_ids), "hidden": len(index.removed),
    }
