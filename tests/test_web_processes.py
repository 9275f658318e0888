"""Several web processes (`search-party serve --processes 2`) behind one address, with a real
redis-server: both processes answer, a session (and its CSRF token) made by one is good in the
other, and the sign-in rate limit counts across them (in Redis, not per process).  And Redis
away loses no upload: the clip is kept in SQLite and queued once Redis is back."""

from __future__ import annotations

import http.cookiejar
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis
from domain_world import settings_for
from short_clips import dog_clip
from test_jobs import worker_env
from web_helpers import app_config, upload_via_api

from search_party.community import accounts, camera_tokens, cameras
from search_party.ingest import jobs
from search_party.measure.local_redis import free_port, local_redis
from search_party.store import storage
from search_party.store.db import open_db
from web import create_app
from web.extensions import SIGN_IN_LIMIT

ROOT = Path(__file__).resolve().parent.parent
PER_MINUTE = int(SIGN_IN_LIMIT.split()[0])
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _open(opener: urllib.request.OpenerDirector, url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_two_web_processes_share_sessions_and_count_rate_limits_in_redis(tmp_path):
    with local_redis() as redis_url:
        settings = settings_for(tmp_path / "data").model_copy(update={"redis_url": redis_url})
        with open_db(settings.db_path) as db:
            accounts.create_user(db, "owner@example.org", "a long enough passphrase")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "serve.log"
        server = subprocess.Popen(
            [sys.executable, "-m", "search_party.cli", "serve", "--port", str(port), "--no-worker", "--processes", "2"],
            cwd=ROOT, env=worker_env(settings), stdout=log.open("wb"), stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not _up(base):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            web = _children(server.pid)
            assert len(web) == 2, web
            # Both processes take connections: ask until each has spent CPU on answering.
            before = {pid: _cpu_ticks(pid) for pid in web}
            for _ in range(400):
                _open(urllib.request.build_opener(), f"{base}/login")
                if all(_cpu_ticks(pid) > before[pid] for pid in web):
                    break
            assert all(_cpu_ticks(pid) > before[pid] for pid in web), "one process answered everything"

            statuses = []
            for _ in range(PER_MINUTE + 1):  # each try: a fresh connection, its own session
                opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
                status, page = _open(opener, f"{base}/login")
                token = _CSRF.search(page)
                assert status == 200 and token, page[:500]
                status, page = _open(opener, f"{base}/login", {
                    "email": "owner@example.org", "password": "not the passphrase", "csrf_token": token.group(1)})
                statuses.append(status)
                if status == 400:  # the session made by one process was read by whichever took this
                    assert "do not match an account" in page
            assert statuses == [400] * PER_MINUTE + [429]
            assert list(redis.Redis.from_url(redis_url).scan_iter("LIMITS*"))  # counted in Redis
        finally:
            server.terminate()
            server.wait(timeout=60)
        assert all(not Path(f"/proc/{pid}").exists() for pid in web)  # the web processes went too


def _up(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5):
            return True
    except OSError:
        return False


def test_an_upload_while_redis_is_down_is_kept_and_queued_once_it_is_back(tmp_path):
    """Tried: uploading a real clip with an upload token while nothing listens at the Redis
    address (the queue and the rate-limit counts both unreachable)."""
    away = f"redis://127.0.0.1:{free_port()}/0"
    settings = settings_for(tmp_path / "data").model_copy(update={"redis_url": away})
    app = create_app(app_config(settings, ENQUEUE_CLIPS=True, RATELIMIT_ENABLED=True))
    with open_db(settings.db_path) as db:
        owner = accounts.create_user(db, "neighbour@example.org")
        camera = cameras.opt_in(db, cameras.register_camera(db, owner.id, lat=51.5, lon=-0.12).id, owner.id)
        _, token = camera_tokens.create_token(db, camera.id, owner.id)
    reply = upload_via_api(app.test_client(), camera.id, dog_clip(tmp_path / "porch.mp4"),
                           Authorization=f"Bearer {token}")
    assert reply.status_code == 201, reply.get_data(as_text=True)
    with open_db(settings.db_path) as db:
        (clip,) = storage.list_clips(db)
        assert clip.status == "queued"  # kept in SQLite, the source of truth
        with local_redis() as redis_url:  # Redis is back (empty): the upkeep's recovery enqueues it
            back = settings.model_copy(update={"redis_url": redis_url})
            queue = jobs.make_queue(back)
            assert jobs.recover(back, db, queue).enqueued == [clip.id]
            assert queue.pending_clip_ids() == {clip.id}
