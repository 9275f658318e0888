"""`search-party detect`: pet boxes per image, only a count of people, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from search_party.cli import cli


def _run(*args: str):
    return CliRunner().invoke(cli, ["detect", *args])


def test_json_has_pets_and_only_a_person_count(fixtures: Path):
    dog = fixtures / "images" / "zamba_dog_porch.jpg"
    astronaut = fixtures / "images" / "astronaut.png"
    result = _run(str(dog), str(astronaut), "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [set(r) for r in rows] == [{"path", "pets", "persons"}] * 2
    assert [r["path"] for r in rows] == [str(dog), str(astronaut)]
    assert [p["label"] for p in rows[0]["pets"]] == ["dog"]
    assert set(rows[0]["pets"][0]) == {"label", "score", "box"} and len(rows[0]["pets"][0]["box"]) == 4
    assert rows[1]["pets"] == [] and isinstance(rows[1]["persons"], int) and rows[1]["persons"] >= 1


def test_text_output_lists_pets_and_counts_people(fixtures: Path):
    result = _run(str(fixtures / "images" / "skimage_chelsea.png"), str(fixtures / "images" / "astronaut.png"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith("skimage_chelsea.png: 1 pet(s), 0 person region(s)")
    assert lines[1].strip().startswith("cat ")
    # The astronaut gets a count and nothing else: no line describes where the person is.
    assert "astronaut.png: 0 pet(s)" in lines[2] and "person region(s)" in lines[2]
    assert len(lines) == 3


def test_detector_can_be_chosen(fixtures: Path):
    result = _run("--json", "--detector", "yolox_nano", str(fixtures / "images" / "skimage_chelsea.png"))
    assert result.exit_code == 0, result.output
    assert [p["label"] for p in json.loads(result.stdout)["pets"]] == ["cat"]


def test_unknown_detector_is_refused_by_the_option(fixtures: Path):
    # Tried: --detector with a name that is not one of the three graphs.
    result = _run("--detector", "yolov9", str(fixtures / "images" / "skimage_chelsea.png"))
    assert result.exit_code == 2 and "yolov9" in result.stderr


def test_unreadable_files_are_reported_and_the_rest_still_processed(fixtures: Path, tmp_path: Path):
    # Tried: a text file named .jpg; the remaining images must still be processed.
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a picture")
    cat = fixtures / "images" / "skimage_chelsea.png"
    result = _run("--json", str(fake), str(cat))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: notes.jpg is not an image we can read (JPEG, PNG, HEIC, WebP …)"]
    assert json.loads(result.stdout)["pets"][0]["label"] == "cat"


def test_console_script_gives_one_line_per_bad_file_and_no_traceback(fixtures: Path, tmp_path: Path):
    # Tried, through the installed console script: a truncated JPEG, a missing file and a folder.
    porch = fixtures / "images" / "zamba_dog_porch.jpg"
    truncated = tmp_path / "half.jpg"
    truncated.write_bytes(porch.read_bytes()[:20_000])
    exe = Path(sys.executable).with_name("search-party")
    proc = subprocess.run(
        [str(exe), "detect", "--json", str(truncated), str(tmp_path / "missing.png"), str(tmp_path), str(porch)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors), errors
    assert "half.jpg is damaged or incomplete" in errors[0]
    assert "missing.png: no such file" in errors[1]
    assert "is a folder" in errors[2]
    row = json.loads(proc.stdout)
    assert row["path"] == str(porch) and [p["label"] for p in row["pets"]] == ["dog"]
