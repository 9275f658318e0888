"""The real queue with a real worker process: huey on SQLite, `search-party worker` in a subprocess,
the full pipeline on real composed clips (tests/short_clips.py), a real SQLite file in tmp_path.

Crash test hook: SEARCH_PARTY_TEST_PAUSE_BEFORE_COMMIT (see search_party/ingest/clip_task.py) makes the
worker write a marker file from inside the open transaction that stores a clip, then sleep, so
the test can SIGKILL it at the worst possible moment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from domain_world import settings_for
from huey import RedisHuey, SqliteHuey
from short_clips import SECONDS, dog_clip

from search_party.community import accounts, cameras
from search_party.config import Settings, load_settings
from search_party.errors import UserError
from search_party.ingest import jobs, spool
from search_party.store import storage
from search_party.store.db import open_db

ROOT = Path(__file__).resolve().parent.parent
THROUGHPUT_CLIPS = 100


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a process that runs on ``settings`` and nothing else of this one's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_PARTY_")}
    return {**env, **settings.as_environment(), **extra}


def start_worker(settings: Settings, log: Path, **extra: str) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "search_party.cli", "worker"], cwd=ROOT,
                                env=worker_env(settings, **extra), stdout=out, stderr=subprocess.STDOUT)


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # graceful: finish the clip in hand, then exit
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(condition, what: str, log: Path, proc: subprocess.Popen | None = None,
             timeout: float = 300) -> None:
    """Poll until ``condition()``; the timeout only keeps a broken run from hanging CI."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the worker exited ({proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def opted_in_camera(db) -> cameras.Camera:
    owner = accounts.create_user(db, "neighbour@example.org")
    return cameras.opt_in(db, cameras.register_camera(db, owner.id, lat=51.5, lon=-0.12).id, owner.id)


def clip_rows(db, clip_id: int) -> tuple[int, int]:
    sightings = db.execute("SELECT count(*) FROM sightings WHERE clip_id = ?", [clip_id]).fetchone()[0]
    crops = db.execute("SELECT count(*) FROM sighting_crops c JOIN sightings s ON s.id = c.sighting_id "
                       "WHERE s.clip_id = ?", [clip_id]).fetchone()[0]
    return sightings, crops


def test_a_worker_killed_inside_the_commit_leaves_nothing_and_the_clip_completes_once(tmp_path):
    settings = settings_for(tmp_path / "data")
    log = tmp_path / "worker.log"
    db = open_db(settings.db_path)
    camera = opted_in_camera(db)
    clip = spool.register_clip(settings, db, dog_clip(tmp_path / "porch.mp4"), camera.id).clip
    jobs.make_queue(settings).enqueue(clip.id)
    marker = tmp_path / "inside-the-commit"

    doomed = start_worker(settings, log, SEARCH_PARTY_TEST_PAUSE_BEFORE_COMMIT=str(marker))
    wait_for(marker.exists, "the worker to reach the commit", log, doomed)
    # The sightings are written but not committed: nobody else sees them.
    assert clip_rows(db, clip.id) == (0, 0)
    assert storage.get_clip(db, clip.id).status == "processing"
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()

    assert clip_rows(db, clip.id) == (0, 0)
    left = storage.get_clip(db, clip.id)
    assert left.status == "processing" and left.attempts == 1  # the dead worker's claim
    assert (settings.spool_dir / left.spool_name).is_file()  # the footage waits for the retry

    worker = start_worker(settings, log)
    try:
        wait_for(lambda: storage.get_clip(db, clip.id).status == "done", "the retried clip", log, worker)
    finally:
        stop_worker(worker)
    done = storage.get_clip(db, clip.id)
    sightings, crops = clip_rows(db, clip.id)
    assert done.attempts == 2 and done.sightings_count == sightings == 1  # exactly once
    assert crops >= 1
    assert storage.count_sightings(db) == 1
    assert list(settings.spool_dir.iterdir()) == []  # the footage is gone once processed
    assert "1 clip(s) requeued" in log.read_text()


def test_a_hundred_clips_queued_at_once_are_each_processed_exactly_once(tmp_path):
    """Throughput run.  Also in the same queue: the first clip enqueued twice more (duplicate
    messages), the first file volunteered again (a duplicate upload), and two bad files: a text
    file named .mp4 and a zero-length .mp4."""
    settings = settings_for(tmp_path / "data")
    log = tmp_path / "worker.log"
    db = open_db(settings.db_path)
    camera = opted_in_camera(db)
    folder = tmp_path / "clips"
    folder.mkdir()
    paths = [dog_clip(folder / f"porch-{i:03d}.mp4", seed=i) for i in range(THROUGHPUT_CLIPS)]
    (folder / "notes.mp4").write_text("not a video, just a text file with the wrong name\n")
    (folder / "empty.mp4").write_bytes(b"")
    bad = [folder / "notes.mp4", folder / "empty.mp4"]
    queued = subprocess.run(
        [sys.executable, "-m", "search_party.cli", "ingest", "--queue", "--camera", str(camera.id),
         *map(str, paths + bad + paths[:1])],
        cwd=ROOT, env=worker_env(settings), capture_output=True, text=True, timeout=300)
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.count("queued as clip") == THROUGHPUT_CLIPS + 2
    assert "already volunteered as clip" in queued.stdout.splitlines()[-1]
    first = storage.list_clips(db)[0]
    queue = jobs.make_queue(settings)
    queue.enqueue(first.id)
    queue.enqueue(first.id)

    started = time.monotonic()
    worker = start_worker(settings, log)
    try:
        wait_for(lambda: not storage.list_clips(db, status="queued")
                 and not storage.list_clips(db, status="processing"), "every clip", log, worker)
        elapsed = time.monotonic() - started
    finally:
        stop_worker(worker)

    clips = storage.list_clips(db)
    good = [c for c in clips if c.filename.startswith("porch-")]
    assert len(good) == THROUGHPUT_CLIPS  # none lost, no duplicate registered
    for clip in good:
        assert (clip.status, clip.attempts, clip.sightings_count) == ("done", 1, 1), clip
        assert clip_rows(db, clip.id)[0] == 1  # none twice
    assert storage.count_sightings(db) == THROUGHPUT_CLIPS
    failed = {c.filename: c for c in clips if c.status == "failed"}
    assert set(failed) == {"notes.mp4", "empty.mp4"}
    assert "notes.mp4" in failed["notes.mp4"].reason and "not a video" in failed["notes.mp4"].reason
    assert "empty.mp4" in failed["empty.mp4"].reason
    for clip in failed.values():
        assert clip_rows(db, clip.id) == (0, 0) and clip.sightings_count == 0
    assert list(settings.spool_dir.iterdir()) == [] and queue.pending_clip_ids() == set()
    per_clip = sum(c.stats["wall_seconds"] for c in good) / len(good)
    print(f"\nthroughput: {THROUGHPUT_CLIPS} clips of {SECONDS:g} s at 320x240 in {elapsed:.1f} s "
          f"(worker start and model load included) = {THROUGHPUT_CLIPS / elapsed * 60:.0f} clips/minute; "
          f"pipeline {per_clip * 1000:.0f} ms per clip on average")


def test_recovery_requeues_a_dead_workers_clip_and_fails_one_that_keeps_killing_workers(tmp_path):
    settings = settings_for(tmp_path / "data")
    db = open_db(settings.db_path)
    camera = opted_in_camera(db)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_claim = f"{jobs.socket.gethostname()}:{gone.stdout.strip()}:dead"
    live_claim = jobs.new_claim()  # this very process: alive
    ids = []
    for n, claim in enumerate((dead_claim, dead_claim, live_claim)):
        clip = spool.register_clip(settings, db, dog_clip(tmp_path / f"c{n}.mp4", seed=n), camera.id).clip
        storage.claim_clip(db, clip.id, claim)
        ids.append(clip.id)
    db.execute("UPDATE clips SET attempts = ? WHERE id = ?", [settings.max_attempts, ids[1]])
    (settings.spool_dir / "clip-999").mkdir()  # a clip deleted by an opt-out left its folder
    queue = jobs.make_queue(settings)

    report = jobs.recover(settings, db, queue)

    assert report.requeued == [ids[0]] and report.failed == [ids[1]]
    assert storage.get_clip(db, ids[0]).status == "queued"
    assert queue.pending_clip_ids() == {ids[0]}
    failed = storage.get_clip(db, ids[1])
    assert failed.status == "failed" and "worker stopped 3 times" in failed.reason
    assert storage.get_clip(db, ids[2]).status == "processing"  # its worker is alive
    assert set(report.spool_removed) == {"clip-999", f"clip-{ids[1]}"}  # nothing waits for them
    assert jobs.recover(settings, db, queue).enqueued == []  # already in the queue: not twice


def test_the_queue_is_sqlite_by_default_and_redis_when_a_url_is_set(tmp_path, monkeypatch):
    settings = settings_for(tmp_path / "data")
    queue = jobs.make_queue(settings)
    assert isinstance(queue.huey, SqliteHuey)
    assert Path(queue.huey.storage.filename) == settings.data_dir / "queue.db"
    monkeypatch.setenv("SEARCH_PARTY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SEARCH_PARTY_REDIS_URL", "redis://queue.example:6379/3")
    redis_queue = jobs.make_queue(load_settings())
    assert isinstance(redis_queue.huey, RedisHuey)
    kwargs = redis_queue.huey.storage.pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("queue.example", 6379, 3)
    monkeypatch.setenv("SEARCH_PARTY_REDIS_URL", "localhost:6379")  # tried: a URL with no scheme
    with pytest.raises(UserError, match="must start with redis://"):
        load_settings()
