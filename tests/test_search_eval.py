"""`search-party eval search`: the simulated neighbourhood is planned as described and scored on
the real store, index and matching path, with the fixture's real MPDD dogs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sighting_drafts import MPDD, embedder

from embeddings.reid_data import read_folder
from search_party.cli import cli
from search_party.measure import search_eval
from search_party.search import geofence
from search_party.store.index_kinds import INDEX_KINDS


@lru_cache(maxsize=1)
def fixture_dogs() -> search_eval.EmbeddedFolder:
    return search_eval.embed_folder(read_folder(MPDD), embedder())


def test_each_dog_walks_from_where_it_was_lost_and_its_owner_keeps_one_sequence_back():
    data = fixture_dogs()
    hood = search_eval.plan_neighbourhood(data.items, seed=0)
    assert len(hood.walks) == len({it.identity for it in data.items})  # every fixture dog: 2+ sequences
    used = Counter()
    for walk in hood.walks:
        owner_seqs = {data.items[i].sequence for i in walk.owner_photos}
        assert len(owner_seqs) == 1 and 1 <= len(walk.owner_photos) <= 5
        assert geofence.distance_m(hood.center, walk.last_seen) <= search_eval.CITY_RADIUS_M + 1
        times = [stop.time for stop in walk.stops]
        assert times == sorted(times) and times[0] > walk.lost_at
        for stop in walk.stops:
            crops = [i for part in stop.sightings for i in part]
            assert {data.items[i].identity for i in crops} == {walk.identity}
            assert len({data.items[i].sequence for i in crops}) == 1
            assert not owner_seqs & {data.items[i].sequence for i in crops}  # kept back
            assert all(1 <= len(part) <= search_eval.CROPS_PER_SIGHTING for part in stop.sightings)
            used.update(crops)
    assert max(used.values()) == 1  # every crop is one sighting's crop, once
    assert search_eval.plan_neighbourhood(data.items, seed=0) == hood  # seeded
    assert search_eval.plan_neighbourhood(data.items, seed=1) != hood


@pytest.mark.parametrize("index_kind", INDEX_KINDS)
def test_the_fixture_dogs_are_found_in_their_neighbourhood(index_kind):
    result = search_eval.evaluate(fixture_dogs(), seed=0, index_kind=index_kind)
    assert result.searches == 8 and result.sightings > 30
    assert 0 <= result.hit1 <= result.hit5 <= 1
    assert result.hit5 >= 0.75 and result.recall >= 0.75
    assert result.asks_per_search >= result.false_asks_per_search >= 0
    assert set(result.as_json()) == {"searches", "hit1", "hit5", "asks_per_search", "recall"}


def test_calibration_picks_the_lowest_threshold_within_the_false_request_budget():
    chosen, rows = search_eval.calibrate(fixture_dogs(), seeds=[1], grid=np.array([0.9, 0.7, 0.5, 0.3]),
                                         false_ask_budget=0.5)
    assert [r.threshold for r in rows] == sorted((r.threshold for r in rows), reverse=True)
    within = [r.threshold for r in rows if r.false_asks_per_search <= 0.5]
    assert chosen == min(within)
    recalls = [r.recall for r in rows]
    assert recalls == sorted(recalls)  # a lower threshold never finds less


def test_the_command_prints_one_json_object_with_the_agreed_keys():
    result = CliRunner().invoke(cli, ["eval", "search", str(MPDD), "--json", "--seed", "0",
                                      "--model", "imagenet"])
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.output.splitlines() if ln.startswith("{")]
    figures = json.loads(line[0])
    assert list(figures) == ["searches", "hit1", "hit5", "asks_per_search", "recall"]
    assert figures["searches"] == 8


def test_fusion_limits_each_side_to_the_evidence_asked_for():
    data = fixture_dogs()
    hood = search_eval.plan_neighbourhood(data.items, seed=0)
    single = search_eval._clips(hood, data, search_eval.Evidence(crops=1))
    fused = search_eval._clips(hood, data, search_eval.Evidence())
    assert [len(c.drafts) for c in single] == [len(c.drafts) for c in fused]  # the same sightings
    assert {len(d.crop_vectors) for c in single for d in c.drafts} == {1}
    assert max(len(d.crop_vectors) for c in fused for d in c.drafts) == search_eval.CROPS_PER_SIGHTING


def test_the_fusion_table_compares_one_view_with_all_of_them():
    result = CliRunner().invoke(cli, ["eval", "search", str(MPDD), "--json", "--fusion"])
    assert result.exit_code == 0, result.output
    figures = json.loads(next(ln for ln in result.output.splitlines() if ln.startswith("{")))
    assert list(figures) == [e.name for e in search_eval.FUSION]
    one, everything = figures["1 photo(s) × 1 crop(s)"], figures["all photo(s) × all crop(s)"]
    assert one["searches"] == everything["searches"] == 8
    assert everything["recall"] >= one["recall"]  # more views of each side never lose the dog here


def test_the_same_visit_table_trades_split_visits_against_merged_dogs():
    rows = search_eval.same_visit_table(fixture_dogs(), np.array([0.2, 0.4, 0.6, 0.8]))
    below = [r.same_sequence_below for r in rows]
    merged = [r.other_dogs_at_or_above for r in rows]
    assert below == sorted(below) and merged == sorted(merged, reverse=True)  # a higher bar splits more, merges less
    assert len({r.pairs for r in rows}) == 1 and min(rows[0].pairs) > 0


def test_a_folder_it_cannot_simulate_is_refused_in_one_line(tmp_path):
    """Tried, through the console script: a folder that does not exist, and a dog with a single
    sequence (nothing to keep back as the owner's photos)."""
    exe = Path(sys.executable).with_name("search-party")
    lonely = tmp_path / "dogs" / "131"
    lonely.mkdir(parents=True)
    shutil.copy(next((MPDD / "131").iterdir()), lonely / "a.jpg")
    for folder, message in ((tmp_path / "nowhere", "is not a folder of <identity>/<image> files"),
                            (tmp_path / "dogs", "has no dog with images from two or more sequences")):
        proc = subprocess.run([str(exe), "eval", "search", str(folder)], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith("error: ") and message in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
