"""`search-party bench vision` on the committed fixture videos, images and MPDD crops.

The bench runs once (one repeat, one detector, two crops); the timings themselves are not asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from search_party.cli import cli
from search_party.cli.bench import _table
from search_party.errors import UserError


@pytest.fixture(scope="module")
def report(fixtures: Path) -> dict:
    result = CliRunner().invoke(cli, ["bench", "vision", "--json", "--data", str(fixtures), "--repeats", "1",
                                      "--crops", "2", "--detector", "yolox_nano"])
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


def test_a_data_folder_without_the_bench_files_is_a_user_error(tmp_path: Path):
    # Tried: an empty folder, and a folder that does not exist.
    empty = CliRunner().invoke(cli, ["bench", "vision", "--data", str(tmp_path)])
    assert isinstance(empty.exception, UserError) and "vtest_pedestrians_15s.mp4" in str(empty.exception)
    missing = CliRunner().invoke(cli, ["bench", "vision", "--data", str(tmp_path / "nope")])
    assert isinstance(missing.exception, UserError) and "not found" in str(missing.exception)
