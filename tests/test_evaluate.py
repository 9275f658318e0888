"""Re-ID scoring: metrics on hand-made rankings with known answers, and `search-party eval reid`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from embeddings.evaluate import expand_queries, k_reciprocal_distances, rerank_shortlist, score


def _unit(rows: list[list[float]]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _angles(degrees: list[float]) -> np.ndarray:
    """Points on the unit circle: cosine similarity falls with the angle between them."""
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


def test_metrics_on_a_known_ranking():
    # Dog a at 0°, 10°, 100°; dog b at 22°, 32°, each image its own sequence.
    # Query a0: 10° (a ✓), 22° (b), 32° (b), 100° (a ✓) -> AP = (1/1 + 2/4) / 2 = 0.75, rank-1 hit.
    # Query a1: 0° (a ✓), 22°, 32°, 100° (a ✓) -> AP 0.75, hit.
    # Query a2 (100°): 32° (b), 22° (b), 10° (a), 0° (a) -> AP = (1/3 + 2/4) / 2, miss, rank-5 hit.
    # Query b0 (22°): 32° (b ✓) first -> AP 1, hit.  Query b1 (32°): 22° (b ✓) -> AP 1, hit.
    vectors = _angles([0, 10, 100, 22, 32])
    ids = ["a", "a", "a", "b", "b"]
    seqs = [f"{i}/{n}" for n, i in enumerate(ids)]
    s = score(vectors, ids, seqs)
    assert s.queries == 5 and s.skipped == 0
    assert s.rank1 == pytest.approx(4 / 5)
    assert s.rank5 == pytest.approx(1.0)
    assert s.mAP == pytest.approx((0.75 + 0.75 + (1 / 3 + 2 / 4) / 2 + 1 + 1) / 5)


def test_same_sequence_is_neither_gallery_nor_positive():
    # a0 and a1 share a sequence (near-copies): a1 must not count as a0's hit.  a2 is the
    # same dog in another sequence but further away than dog b.
    vectors = _angles([0, 1, 50, 20])
    ids = ["a", "a", "a", "b"]
    seqs = ["a/1", "a/1", "a/2", "b/1"]
    s = score(vectors, ids, seqs)
    # Queries a0, a1: b (20°) beats a2 (50°) -> AP 1/2, miss.  a2: a1 (49°) vs b (30°): b first,
    # then a1 and a0 -> AP (1/2 + 2/3) / 2, miss.  b has no other image: skipped.
    assert (s.queries, s.skipped) == (3, 1)
    assert s.rank1 == 0.0
    assert s.mAP == pytest.approx((0.5 + 0.5 + (1 / 2 + 2 / 3) / 2) / 3)


def test_query_without_any_positive_in_another_sequence_is_skipped():
    vectors = _angles([0, 5, 90])
    s = score(vectors, ["a", "a", "b"], ["a/1", "a/1", "b/1"])
    assert s.queries == 0 and s.skipped == 3 and np.isnan(s.mAP)


def test_query_expansion_uses_only_allowed_gallery_items():
    queries = _unit([[1, 0, 0]])
    gallery = _unit([[1, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    excluded = np.array([[True, False, False]])  # the closest item is off limits
    expanded = expand_queries(queries, gallery, k=1, alpha=1.0, excluded=excluded)
    # The best allowed neighbour (both remaining are orthogonal, weight 0) adds nothing.
    np.testing.assert_allclose(expanded, queries, atol=1e-6)
    unrestricted = expand_queries(queries, gallery, k=1, alpha=1.0)
    assert unrestricted[0, 1] > 0.0  # now it leans toward the close item


def test_query_expansion_pulls_in_a_second_view_of_the_same_dog():
    # The query's best hit g1 is its own dog; g2 is the same dog seen from further round (close to
    # g1, less so to the query); b is another dog.  Plain order: g1, b, g2.  Expanding the query
    # with g1 (k=1, weight 0.894³) turns it toward g2: order g1, g2, b.
    query = _unit([[1, 0, 0]])
    gallery = _unit([[1, 0.5, 0], [1, 1.2, 0], [1, 0, 1]])  # g1, g2, b
    assert list(np.argsort(-(query @ gallery.T)[0])) == [0, 2, 1]
    expanded = expand_queries(query, gallery, k=1, alpha=3.0)
    assert list(np.argsort(-(expanded @ gallery.T)[0])) == [0, 1, 2]
    assert np.linalg.norm(expanded) == pytest.approx(1.0, abs=1e-6)
    assert expanded.dtype == np.float32


def test_k_reciprocal_keeps_mutual_neighbours_together():
    # Two tight groups of five on the circle (dogs a and b) and a stray point between them that
    # is slightly closer to b's edge than a's edge is.  Re-ranked, every item of a group stays
    # nearer its own group than the other, and the query's shortlist puts its group first.
    vectors = _angles([0, 2, 4, 6, 8, 40, 42, 44, 46, 48, 25])
    dist = k_reciprocal_distances(vectors, k1=4, k2=2)
    assert dist.shape == (11, 11)
    a, b = np.arange(5), np.arange(5, 10)
    assert dist[np.ix_(a, a)].max() < dist[np.ix_(a, b)].min()
    assert dist[np.ix_(b, b)].max() < dist[np.ix_(b, a)].min()
    order = rerank_shortlist(vectors[0], vectors[1:])
    assert set(order[:4]) == {0, 1, 2, 3}  # a's other four images (indices into the shortlist)


def test_every_reranker_scores_the_same_queries():
    vectors = _angles([0, 10, 100, 22, 32])
    ids = ["a", "a", "a", "b", "b"]
    seqs = [f"{i}/{n}" for n, i in enumerate(ids)]
    results = [score(vectors, ids, seqs, r) for r in ("none", "qe", "kr")]
    assert {(r.queries, r.skipped) for r in results} == {(5, 0)}
    assert all(0.0 <= r.mAP <= 1.0 for r in results)
    with pytest.raises(ValueError, match="unknown re-ranking"):
        score(vectors, ids, seqs, "magic")


def _eval_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search_party.cli", "eval", "reid", *args],
                          capture_output=True, text=True, timeout=600)


def test_eval_reid_json_reports_both_models(fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_PARTY_DATA_DIR", str(tmp_path / "data"))
    result = _eval_cli(str(fixtures / "reid" / "mpdd"), "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["model"] for r in rows] == ["trained", "imagenet"]
    n_images = len((fixtures / "reid" / "mpdd" / "labels.csv").read_text().splitlines()) - 1
    for row in rows:
        assert set(row) == {"model", "queries", "rank1", "rank5", "mAP"}
        assert row["queries"] == n_images  # every fixture dog was filmed in 2+ sequences
        assert 0.5 <= row["rank1"] <= row["rank5"] <= 1.0
        assert 0.3 <= row["mAP"] <= 1.0
    assert "skipped" in result.stderr

    # --ids keeps only the listed dogs; the table form names both models.
    ids = tmp_path / "ids.txt"
    ids.write_text("# two dogs\n131\n148\n")
    table = _eval_cli(str(fixtures / "reid" / "mpdd"), "--ids", str(ids))
    assert table.returncode == 0, table.stderr
    assert "trained" in table.stdout and "imagenet" in table.stdout
    assert "of 2 dogs" in table.stdout


def test_eval_reid_degrade_ranks_clean_queries_against_a_degraded_gallery(fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_PARTY_DATA_DIR", str(tmp_path / "data"))
    ids = tmp_path / "ids.txt"
    ids.write_text("131\n148\n151\n")
    result = _eval_cli(str(fixtures / "reid" / "mpdd"), "--ids", str(ids), "--degrade", "ir", "--json")
    assert result.returncode == 0, result.stderr
    rows = {(r["model"], r["gallery"]): r for r in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {(m, g) for m in ("trained", "imagenet") for g in ("clean", "ir")}
    for model in ("trained", "imagenet"):
        clean, night = rows[model, "clean"], rows[model, "ir"]
        assert clean["queries"] == night["queries"] > 0
        assert night["mAP"] < clean["mAP"]  # grey, noisy and flat: the same dogs are harder to rank
    table = _eval_cli(str(fixtures / "reid" / "mpdd"), "--ids", str(ids), "--degrade", "blur")
    assert table.returncode == 0, table.stderr
    assert "mAP drop" in table.stdout and table.stdout.count(" blur ") == 2


def test_a_gallery_must_match_its_queries_row_for_row():
    vectors = _angles([0, 10, 100])
    with pytest.raises(ValueError, match="does not match"):
        score(vectors, ["a", "a", "b"], ["a/0", "a/1", "b/2"], gallery=vectors[:2])


def test_eval_reid_refuses_bad_input_in_one_line(tmp_path):
    # A folder that does not exist.
    missing = _eval_cli(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    # An --ids file that does not exist.
    bad_ids = _eval_cli(str(tmp_path), "--ids", str(tmp_path / "no_ids.txt"))
    assert bad_ids.returncode == 2 and "no such file" in bad_ids.stderr
    # A folder with no labelled images in it.
    empty = _eval_cli(str(tmp_path))
    assert empty.returncode == 2 and "need at least 2" in empty.stderr
