"""`search-party bench vision` on the committed fixture videos, images and MPDD crops.

The bench runs once (one repeat, one detector, two crops; recall on one report-split dog, one
frame per condition); the timings and recall figures themselves are not asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from search_party.cli import cli
from search_party.cli.bench import _recall_table, _table
from search_party.errors import UserError


@pytest.fixture(scope="module")
def report(fixtures: Path) -> dict:
    result = CliRunner().invoke(cli, ["bench", "vision", "--json", "--data", str(fixtures), "--repeats", "1",
                                      "--crops", "2", "--detector", "yolox_nano",
                                      "--per-dog", "1", "--dogs", "1"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_has_a_row_per_model_with_both_runtimes(report):
    assert report["frames"] == 5 and report["crops"] == 2 and report["repeats"] == 1
    assert [(r["component"], r["unit"]) for r in report["rows"]] == [("detector", "frame"), ("embedder", "crop")]
    detector, embedder = report["rows"]
    assert detector["model"] == "yolox_nano" and embedder["model"].startswith("lite0-")
    for row in report["rows"]:
        assert row["onnxruntime_ms"] > 0 and row["torch_ms"] > 0
    # The onnx2torch twin behind the same pre/post-processing finds the same boxes.
    assert "same detections" in detector["torch_note"]


def test_table_has_one_line_per_model(report):
    lines = _table(report).splitlines()
    assert lines[0].split()[:3] == ["component", "model", "unit"]
    assert lines[1].split()[:3] == ["detector", "yolox_nano", "frame"]
    assert lines[2].split()[0] == "embedder" and lines[2].endswith("×")


def test_recall_has_both_looks_per_condition(report):
    recall = report["recall"]
    assert recall["split"] == "report" and recall["detector"] == "picodet_s_416"
    rows = recall["rows"]
    assert [r["condition"] for r in rows] == ["normal", "small", "ir night", "1080p"]
    for r in rows:
        assert r["frames"] == 1
        # The second look runs only where the first found nothing, so it can only add.
        assert r["found_first"] <= r["found_both"] <= 1
        assert r["second_looks"] == (0 if r["found_first"] or r["false_first"] else 1)
        assert 0 < r["ms_first"] <= r["ms_both"]
    lines = _recall_table(recall).splitlines()
    assert lines[0].split()[:3] == ["condition", "frames", "recall"]
    assert [line.split()[0] for line in lines[1:5]] == ["normal", "small", "ir", "1080p"]


def test_recall_on_a_split_the_data_lacks_is_a_user_error(fixtures: Path):
    # Tried: the calibrate split on the test fixture, which holds report-split dogs only.
    result = CliRunner().invoke(cli, ["bench", "vision", "--data", str(fixtures), "--repeats", "1",
                                      "--crops", "1", "--detector", "yolox_nano", "--split", "calibrate",
                                      "--per-dog", "1"])
    assert isinstance(result.exception, UserError) and "calibrate split" in str(result.exception)


def test_a_data_folder_without_the_bench_files_is_a_user_error(tmp_path: Path):
    # Tried: an empty folder, and a folder that does not exist.
    empty = CliRunner().invoke(cli, ["bench", "vision", "--data", str(tmp_path)])
    assert isinstance(empty.exception, UserError) and "vtest_pedestrians_15s.mp4" in str(empty.exception)
    missing = CliRunner().invoke(cli, ["bench", "vision", "--data", str(tmp_path / "nope")])
    assert isinstance(missing.exception, UserError) and "not found" in str(missing.exception)
