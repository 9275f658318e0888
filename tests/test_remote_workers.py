"""Remote ingest workers with real parts: a real redis-server started here, the real web app on a
real HTTP server (tests/web_helpers.LiveServer), the server's upkeep as `search-party worker
--no-ingest`, and three `search-party worker --remote` processes, each with its own empty folder
and no access to the server's database or spool (they get only the server's address, a worker
token, Redis, and the shared cache of exported model graphs).  60 real composed clips
(tests/short_clips.py: one real MPDD dog crossing a real CCTV frame, one second each).

One worker is SIGKILLed mid-clip: SEARCH_PARTY_TEST_PAUSE_BEFORE_COMMIT makes it stop after
processing its first clip and before posting the result, so the kill lands between its claim and
its result.  Its lease runs out, the upkeep re-queues the clip, another worker does it; every clip
ends stored exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from domain_world import settings_for
from short_clips import dog_clip
from test_jobs import clip_rows, opted_in_camera, stop_worker, wait_for, worker_env
from web_helpers import LiveServer, app_config

from search_party.config import Settings
from search_party.ingest import jobs, spool, worker_tokens
from search_party.measure.local_redis import local_redis
from search_party.store import storage
from search_party.store.db import open_db
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
CLIPS = 60
LEASE_SECONDS = 5


def remote_env(server: Settings, folder: Path, token: str, **extra: str) -> dict[str, str]:
    """What a worker machine is given: its own folder, the models' names and cache, Redis and its
    token; nothing that points at the server's data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_PARTY_")}
    return {**env, "SEARCH_PARTY_DATA_DIR": str(folder), "SEARCH_PARTY_MODEL_CACHE": str(server.cache_dir),
            "SEARCH_PARTY_DETECTOR": server.detector, "SEARCH_PARTY_EMBEDDER": server.embedder,
            "SEARCH_PARTY_REDIS_URL": str(server.redis_url), "SEARCH_PARTY_WORKER_TOKEN": token, **extra}


def start_remote(url: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "search_party.cli", "worker", "--remote", url,
                                 "--plain-http"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_three_remote_workers_one_killed_mid_clip_store_every_clip_exactly_once(tmp_path):
    with local_redis() as redis_url:
        server = settings_for(tmp_path / "server").model_copy(update={
            "redis_url": redis_url, "worker_lease_seconds": LEASE_SECONDS, "upkeep_seconds": 1})
        db = open_db(server.db_path)
        camera = opted_in_camera(db)
        queue = jobs.make_queue(server)
        folder = tmp_path / "outbox"
        folder.mkdir()
        ids = []
        for n in range(CLIPS):
            clip = spool.register_clip(server, db, dog_clip(folder / f"porch-{n:02d}.mp4", seed=n), camera.id).clip
            queue.enqueue(clip.id)
            ids.append(clip.id)
        tokens = [worker_tokens.create_token(db, f"ingest-{n}") for n in range(3)]
        folders = [tmp_path / f"worker-{n}" for n in range(3)]
        logs = [tmp_path / f"worker-{n}.log" for n in range(3)]
        marker = tmp_path / "paused-mid-clip"
        upkeep_log = tmp_path / "upkeep.log"
        procs: list[subprocess.Popen] = []
        with LiveServer(create_app(app_config(server))) as live:
            try:
                with upkeep_log.open("a") as out:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-m", "search_party.cli", "worker", "--no-ingest"], cwd=ROOT,
                        env=worker_env(server), stdout=out, stderr=subprocess.STDOUT))
                doomed = start_remote(live.url, remote_env(server, folders[0], tokens[0][1],
                                      SEARCH_PARTY_TEST_PAUSE_BEFORE_COMMIT=str(marker)), logs[0])
                procs.append(doomed)
                wait_for(marker.exists, "the first worker to be mid-clip", logs[0], doomed)
                for n in (1, 2):
                    procs.append(start_remote(live.url, remote_env(server, folders[n], tokens[n][1]), logs[n]))
                held = [c for c in storage.list_clips(db, status="processing")
                        if (c.claimed_by or "").startswith(f"remote#{tokens[0][0].id}:")]
                assert len(held) == 1  # the clip in the killed worker's hands
                os.kill(doomed.pid, signal.SIGKILL)
                doomed.wait()

                wait_for(lambda: len(storage.list_clips(db, status="done")) == CLIPS, "every clip",
                         logs[1], procs[2], timeout=600)
            finally:
                for proc in procs[2:]:
                    stop_worker(proc)
                stop_worker(procs[0])
        everything = "".join(log.read_text() for log in logs[1:])

        clips = storage.list_clips(db)
        assert [c.id for c in clips] == ids  # nothing lost, nothing registered twice
        for clip in clips:
            assert (clip.status, clip.sightings_count) == ("done", 1), clip
            assert clip_rows(db, clip.id)[0] == 1  # stored exactly once
        assert storage.count_sightings(db) == CLIPS
        killed = storage.get_clip(db, held[0].id)
        assert killed.attempts >= 2  # the dead worker's attempt, then another's
        assert f"clip {killed.id} done" in everything  # finished by a surviving worker
        assert "recovered clips left by dead workers" in upkeep_log.read_text()
        assert list(server.spool_dir.iterdir()) == []  # footage deleted once stored
        assert queue.pending_clip_ids() == set()  # Redis holds nothing more
        for n in (1, 2):
            assert list(folders[n].glob("clip-*")) == []  # workers keep no footage
            assert not list(folders[n].rglob("*.db"))  # and no database
        model_versions = {s.model_version for s in storage.list_sightings(db)}
        assert model_versions == {jobs.vision.load_models(server).embedder.version}
        done_by = [everything.count(f"clip {i} done") for i in ids]
        assert set(done_by) == {1}, "each clip done once by the surviving workers"
