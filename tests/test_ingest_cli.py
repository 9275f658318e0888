"""`search-party camera`, `ingest`, `clips` as a user runs them: real subprocesses, real clips from
the fixture, a real data folder in tmp_path."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from test_jobs import ROOT, worker_env

from search_party.store import storage
from search_party.store.db import open_db
from search_party.store.vector_index import VectorIndex, file_header

PUPPY = ROOT / "tests" / "fixtures" / "videos" / "dog_puppy_indoor_4s_480p.mp4"


def run(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search_party.cli", *args], cwd=ROOT,
                          env=worker_env(settings), capture_output=True, text=True, timeout=300)


def add_opted_in_camera(settings) -> None:
    added = run(settings, "camera", "add", "--owner", "n@example.org", "--lat", "51.5", "--lon", "-0.12",
                "--name", "porch")
    assert added.returncode == 0 and "camera 1 added, opted out" in added.stdout
    assert run(settings, "camera", "opt-in", "1").returncode == 0


def test_a_camera_takes_clips_only_after_its_owner_opts_it_in(settings):
    added = run(settings, "camera", "add", "--owner", "n@example.org", "--lat", "51.5", "--lon", "-0.12")
    assert added.returncode == 0
    refused = run(settings, "ingest", str(PUPPY), "--camera", "1")  # tried: before opting in
    assert refused.returncode == 2 and "not opted in" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    missing = run(settings, "ingest", str(PUPPY), "--camera", "7")  # tried: a camera nobody added
    assert missing.returncode == 2 and missing.stderr.strip() == "error: camera 7 does not exist"
    assert run(settings, "camera", "opt-in", "1").returncode == 0
    listed = run(settings, "camera", "list")
    assert "opted in" in listed.stdout and "retention 30 d" in listed.stdout
    with open_db(settings.db_path) as db:
        assert storage.list_clips(db) == []


def test_ingest_processes_a_clip_once_indexes_it_and_opt_out_erases_it(settings):
    add_opted_in_camera(settings)
    first = run(settings, "ingest", str(PUPPY), "--camera", "1", "--start", "2025-06-01T08:00:00+02:00")
    assert first.returncode == 0, first.stderr
    assert "clip 1 done" in first.stdout
    again = run(settings, "ingest", str(PUPPY), "--camera", "1")  # tried: the same file twice
    assert again.returncode == 0 and "already volunteered as clip 1" in again.stdout
    with open_db(settings.db_path) as db:
        clip = storage.get_clip(db, 1)
        sightings = storage.list_sightings(db)
        assert clip.status == "done" and clip.attempts == 1 and len(storage.list_clips(db)) == 1
        assert clip.start_source == "given" and clip.start_time.isoformat() == "2025-06-01T06:00:00+00:00"
        assert len(sightings) == clip.sightings_count >= 1 and {s.label for s in sightings} == {"dog"}
        header = file_header(settings.index_path)  # the shell path leaves the index current
        assert header["count"] == len(sightings)
        index = VectorIndex.refresh(db, settings.index_path)
        _, found = index.search(np.vstack(storage.crop_vectors(db, [sightings[0].id])[sightings[0].id]), 1)
        assert (found[:, 0] == sightings[0].id).all()
    listed = run(settings, "clips")
    assert f"dog_puppy_indoor_4s_480p.mp4\tdone, {len(sightings)} sighting(s)" in listed.stdout
    assert list(settings.spool_dir.iterdir()) == []  # the footage itself is not kept

    out = run(settings, "camera", "opt-out", "1", "--yes")
    assert out.returncode == 0 and f"{len(sightings)} sighting(s) deleted" in out.stdout
    with open_db(settings.db_path) as db:
        assert storage.count_sightings(db) == 0
        assert db.execute("SELECT count(*) FROM sighting_crops").fetchone()[0] == 0
    assert file_header(settings.index_path)["count"] == 0  # gone from the index file at once


def test_unusable_files_get_one_line_a_failed_status_and_store_nothing(settings, tmp_path):
    add_opted_in_camera(settings)
    text = tmp_path / "notes.mp4"
    text.write_text("a text file named .mp4\n")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(PUPPY.read_bytes()[: PUPPY.stat().st_size // 3])
    tried = {text: "not a video", empty: "empty", truncated: "cut.mp4"}

    result = run(settings, "ingest", *map(str, tried), "--camera", "1")

    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(tried)
    for line, (path, words) in zip(lines, tried.items()):
        assert line.startswith(f"error: {path}: ") and words in line.lower(), line
    with open_db(settings.db_path) as db:
        clips = storage.list_clips(db)
        assert [c.status for c in clips] == ["failed"] * len(tried)
        assert all(c.reason and c.sightings_count == 0 for c in clips)
        assert storage.count_sightings(db) == 0
    assert list(settings.spool_dir.iterdir()) == []
    for args, words in (
        (["ingest", str(tmp_path / "nowhere.mp4"), "--camera", "1"], "does not exist"),  # no file
        (["ingest", str(PUPPY), "--camera", "1", "--start", "2025-06-01T08:00"], "no UTC offset"),
        (["ingest", str(PUPPY), "--camera", "1", "--start", "yesterday"], "not an ISO 8601 time"),
    ):
        bad = run(settings, *args)
        assert bad.returncode == 2 and words in bad.stderr and "Traceback" not in bad.stderr


def test_bad_settings_are_refused_at_start_up_with_one_line(settings, tmp_path):
    """Tried: a retention that is not a number, and a data folder that is a file."""
    env = {**worker_env(settings), "SEARCH_PARTY_RETENTION_DAYS": "a month"}
    bad = subprocess.run([sys.executable, "-m", "search_party.cli", "camera", "list"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: SEARCH_PARTY_RETENTION_DAYS='a month' must be a whole number of at least 1"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**worker_env(settings), "SEARCH_PARTY_DATA_DIR": str(blocker)}
    bad = subprocess.run([sys.executable, "-m", "search_party.cli", "worker"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot create") and "Traceback" not in bad.stderr
