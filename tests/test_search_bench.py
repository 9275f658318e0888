"""`search-party bench search` at a small size: the synthetic city is what the bench says it is,
its vectors come from real dog embeddings, and the geofenced search agrees with the naive one."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
from click.testing import CliRunner
from sighting_drafts import MPDD, embedder

from embeddings.images import load_rgb
from embeddings.reid_data import read_folder
from search_party.cli import cli
from search_party.measure import search_bench
from search_party.search import geofence, matching, scoring
from search_party.store.db import from_db_time
from search_party.store.index_kinds import INDEX_KINDS
from search_party.store.vector_index import VectorIndex

N = 2_000


@lru_cache(maxsize=1)
def real_vectors() -> tuple[np.ndarray, np.ndarray, bytes]:
    """The fixture dogs' real crop vectors, their identities and one small real thumbnail."""
    items = read_folder(MPDD)
    crops = [load_rgb(it.path) for it in items]
    return (embedder().predict(crops), np.array([it.identity for it in items]),
            search_bench.small_jpeg(crops[0]))


def city_part():
    base, identities, _ = real_vectors()
    searched = search_bench.held_out(identities)
    assert 0 < searched.sum() < len(identities) and len(np.unique(identities[searched])) == 1
    return base[~searched], base[searched], identities[searched]


@pytest.fixture(scope="module", params=INDEX_KINDS)
def city(request, tmp_path_factory):
    _, _, thumb = real_vectors()
    store = search_bench.build_store(tmp_path_factory.mktemp("bench"), N, city_part()[0], embedder().version,
                                     thumb, index_kind=request.param)
    yield store
    store.db.close()


def test_the_city_has_the_stated_density_and_real_derived_vectors(city):
    db = city.db
    shape = search_bench.CityShape()
    assert db.execute("SELECT count(*) FROM sightings").fetchone()[0] == N == city.index.count
    assert city.cameras == shape.cameras_for(N) == db.execute("SELECT count(*) FROM cameras").fetchone()[0]
    lat, lon = map(np.array, zip(*db.execute("SELECT lat, lon FROM cameras")))
    dist = geofence.haversine_m(search_bench.CITY_CENTER.lat, search_bench.CITY_CENTER.lon, lat, lon)
    assert dist.max() <= city.city_radius_m + 1
    density = city.cameras / (np.pi * (city.city_radius_m / 1000) ** 2)
    assert density == pytest.approx(shape.cameras_per_km2, rel=0.01)
    times = [from_db_time(t) for (t,) in db.execute("SELECT first_time FROM sightings")]
    assert min(times) >= search_bench.NOW - np.timedelta64(shape.retention_days, "D").item()
    assert max(times) <= search_bench.NOW
    city_base, query_base, _ = city_part()
    sample = [np.frombuffer(b, "<f4") for (b,) in db.execute("SELECT vector FROM sightings LIMIT 200")]
    nearest = (np.stack(sample) @ city_base.T).max(axis=1)
    assert nearest.min() > 0.7  # each is mostly one real dog's crop
    assert np.linalg.norm(np.stack(sample), axis=1) == pytest.approx(1.0, abs=1e-5)


def test_the_geofenced_search_finds_every_match_the_naive_one_finds(city):
    _, query_base, identities = city_part()
    searches = search_bench.plan_searches(query_base, identities, embedder().version, city, 15)
    threshold = scoring.threshold_for(embedder().version)
    for s in searches:
        result = matching.find_candidates(city.db, city.index, s.query, s.fence)
        fenced = {sid for c in result.candidates for sid in c.sighting_ids}
        naive = search_bench.naive_search(city, s)
        top_scores, top_ids = city.index.search(s.query.vector[None], search_bench.NAIVE_K)
        score_of = dict(zip(top_ids[0].tolist(), top_scores[0].tolist()))
        assert {sid for sid in naive if score_of[sid] >= threshold} <= fenced
    figures = search_bench.run(city, searches, warmup=1)
    assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert figures["naive_p95_ms"] > 0 and figures["fenced_mean"] > 0


def test_the_command_prints_the_agreed_json_keys():
    result = CliRunner().invoke(cli, ["bench", "search", "--sightings", str(N), "--searches", "20",
                                      "--reports", "12", "--json", "--data", str(MPDD), "--model", "imagenet"])
    assert result.exit_code == 0, result.output
    figures = json.loads([ln for ln in result.output.splitlines() if ln.startswith("{")][0])
    assert list(figures) == ["sightings", "p50_ms", "p95_ms", "peak_mb", "naive_p95_ms", "report_p50_ms",
                             "report_p95_ms", "faiss_p95_ms", "first_report_ms", "rss_first_mb", "rss_last_mb",
                             "anon_first_mb", "anon_last_mb"]
    assert figures["sightings"] == N and figures["peak_mb"] > 0
    assert figures["faiss_p95_ms"] > 0 and 0 < figures["report_p50_ms"] <= figures["report_p95_ms"]


def test_a_data_folder_without_dogs_is_refused(tmp_path):
    """Tried: an empty folder as the source of real crops."""
    result = CliRunner().invoke(cli, ["bench", "search", "--sightings", str(N), "--data", str(tmp_path)])
    assert result.exit_code != 0 and "needs real crops" in str(result.exception)


def test_the_real_path_searches_each_report_with_the_index_a_server_holds(tmp_path):
    """``run_reports``: each report goes from its stored query vectors to its consent requests
    through the process's one mapped index, which keeps up with the clips stored and the
    sightings deleted between reports."""
    city_base, query_base, identities = city_part()
    _, _, thumb = real_vectors()
    store = search_bench.build_store(tmp_path, N, city_base, embedder().version, thumb, index_kind="sq8")
    figures = search_bench.run_reports(store, search_bench.plan_searches(
        query_base, identities, embedder().version, store, 10, seed=3))
    held = store.index
    assert held.mapped and held is VectorIndex.for_process(store.db, held.path, held.model_version, held.dim,
                                                           flat_limit=held.flat_limit)
    assert figures["reports"] == 10 and 0 < figures["report_p50_ms"] <= figures["report_p95_ms"]
    assert figures["hidden"] == 10  # one sighting deleted before each report
    assert figures["side_index"] == 10 * search_bench.STORED_PER_REPORT
    stored = {r[0] for r in store.db.execute("SELECT id FROM sightings")}
    assert set(held.ids.tolist()) == stored and held.through == max(stored)
    (asked,) = store.db.execute("SELECT count(*) FROM matches WHERE state = 'asked'").fetchone()
    assert asked == round(figures["asked_per_report"] * 10) > 0
    watermarks = [r[0] for r in store.db.execute("SELECT scored_through FROM lost_reports")]
    assert len(watermarks) == 10 and all(0 < w <= held.through for w in watermarks)
    for key in ("memory_before", "memory_first", "memory_last"):
        assert figures[key]["rss"] >= figures[key]["anon"] > 0
    store.db.close()
