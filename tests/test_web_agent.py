"""The camera-side uploader against a real server on 127.0.0.1: a folder of the real fixture
clips is uploaded once each, a restart (a new process, the real CLI) sends nothing again, a lost
state file is answered by the server's dedupe, busy answers are retried, refusals are recorded.
Then `search-party serve` itself: it creates the data folder, and with its worker processes
the uploaded clips (the real worker process, real models)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from domain_world import settings_for
from sighting_drafts import SHIPPED_EMBEDDER
from web_helpers import (
    DOG_CLIP,
    PEOPLE_CLIP,
    ROOT,
    LiveServer,
    add_opted_in_camera,
    app_config,
    db_of,
)

from search_party.agent.watch import Agent
from search_party.community import camera_tokens, cameras
from search_party.errors import UserError
from search_party.store import storage
from web import create_app


@pytest.fixture
def camera(app, signed_in) -> tuple[int, str]:
    """(camera id, upload token) of an opted-in camera."""
    signed_in("nvr.owner@example.org")
    user_id, camera_id = add_opted_in_camera(app, "nvr.owner@example.org")
    with db_of(app) as db:
        _, secret = camera_tokens.create_token(db, camera_id, user_id, "nvr")
    return camera_id, secret


@pytest.fixture
def clip_folder(tmp_path) -> Path:
    """A camera's recordings folder: the two real fixture clips in a dated subfolder."""
    folder = tmp_path / "recordings"
    (folder / "2025-06-01").mkdir(parents=True)
    for clip in (DOG_CLIP, PEOPLE_CLIP):
        shutil.copy2(clip, folder / "2025-06-01" / clip.name)
    (folder / "2025-06-01" / "index.txt").write_text("not a clip: never sent")
    return folder


def local_agent(folder: Path, camera_id: int, token: str, server: str, **options) -> Agent:
    """The folder agent for a test server on 127.0.0.1 (plain http, so --local-network)."""
    return Agent.create(folder, camera_id, token, server, local_network=True, settle_s=0, **options)


def agent_cli(folder: Path, camera_id: int, token: str, server: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEARCH_PARTY_AGENT_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "search_party.cli", "agent", "watch", str(folder),
                           "--camera", str(camera_id), "--server", server, "--local-network", "--settle", "0",
                           "--once"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def clips_of(app, camera_id):
    with db_of(app) as db:
        return storage.list_clips(db, camera_id=camera_id)


def test_agent_uploads_each_clip_once_and_resumes_after_a_restart(app, camera, clip_folder):
    camera_id, token = camera
    said: list[str] = []
    with LiveServer(app) as server:
        first = local_agent(clip_folder, camera_id, token, server.url, say=said.append).scan_once()
        assert sorted(first.uploaded) == [f"2025-06-01/{DOG_CLIP.name}", f"2025-06-01/{PEOPLE_CLIP.name}"], said
        assert first.ok and server.posts() == 2
        assert {c.filename for c in clips_of(app, camera_id)} == {DOG_CLIP.name, PEOPLE_CLIP.name}
        assert all(c.status == "queued" for c in clips_of(app, camera_id))

        restarted = agent_cli(clip_folder, camera_id, token, server.url)  # a new process, same state file
        assert restarted.returncode == 0, restarted.stderr
        assert "0 uploaded" in restarted.stdout and server.posts() == 2  # nothing sent again

        shutil.copy2(DOG_CLIP, clip_folder / "renamed copy.mp4")  # same bytes, new name: no upload
        copy = local_agent(clip_folder, camera_id, token, server.url, say=said.append).scan_once()
        assert copy.duplicates == ["renamed copy.mp4"] and server.posts() == 2

        (clip_folder / ".search-party-uploads.json").unlink()  # the state is lost: the server dedupes
        lost = local_agent(clip_folder, camera_id, token, server.url, say=said.append).scan_once()
        assert len(lost.duplicates) == 3 and not lost.uploaded
        assert len(clips_of(app, camera_id)) == 2  # each clip stored exactly once
    state = json.loads((clip_folder / ".search-party-uploads.json").read_text())
    assert {entry["clip_id"] for entry in state["files"].values()} == {c.id for c in clips_of(app, camera_id)}


def test_agent_retries_a_busy_server_with_backoff(app, camera, clip_folder):
    """Tried: the server answers 503 (Retry-After: 0) to the first two uploads."""
    camera_id, token = camera
    busy = {"left": 2}
    inner = app.wsgi_app

    def overloaded(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST" and busy["left"]:
            busy["left"] -= 1
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            start_response("503 Service Unavailable", [("Content-Type", "application/json"), ("Retry-After", "0")])
            return [b'{"error": "busy"}']
        return inner(environ, start_response)

    app.wsgi_app = overloaded
    waits: list[float] = []
    with LiveServer(app) as server:
        agent = local_agent(clip_folder, camera_id, token, server.url, sleep=waits.append,
                             say=lambda line: None)
        result = agent.scan_once()
        assert result.ok and len(result.uploaded) == 2
        assert server.posts() == 4 and waits == [0.0, 0.0]  # the server's Retry-After was honoured
    assert len(clips_of(app, camera_id)) == 2


def test_agent_records_refusals_and_stops_on_a_revoked_token(settings, tmp_path, clip_folder):
    """Tried: a clip over the server's size limit (refused once, recorded, not resent), then a
    revoked token (the agent stops with a message saying to make a new one)."""
    app = create_app(app_config(settings, MAX_CONTENT_LENGTH=512 * 1024))
    with db_of(app) as db:
        from search_party.community import accounts
        owner = accounts.create_user(db, "limits@example.org", "a long enough passphrase")
    _, camera_id = add_opted_in_camera(app, "limits@example.org")
    with db_of(app) as db:
        token, secret = camera_tokens.create_token(db, camera_id, owner.id)
    with LiveServer(app) as server:
        agent = local_agent(clip_folder, camera_id, secret, server.url, say=lambda line: None)
        first = agent.scan_once()
        assert first.refused == [f"2025-06-01/{PEOPLE_CLIP.name}"] and len(first.uploaded) == 1
        assert "larger than this server accepts" in agent.state.files[first.refused[0]]["message"]
        assert agent.scan_once().refused == [] and server.posts() == 2  # not sent again

        with db_of(app) as db:
            camera_tokens.revoke_token(db, token.id, owner.id)
        shutil.copy2(DOG_CLIP, tmp_path / "x.mp4")
        (clip_folder / "new.mp4").write_bytes((tmp_path / "x.mp4").read_bytes()[:-1])  # new bytes
        with pytest.raises(UserError, match="refused the upload token"):
            agent.scan_once()


def test_agent_refuses_bad_arguments(tmp_path, clip_folder):
    """Tried: a missing folder, an ftp server address, a plain http:// address without
    --local-network, an empty token, a state file of another camera."""
    with pytest.raises(UserError, match="is not a folder"):
        Agent.create(tmp_path / "missing", 1, "spcam_x", "https://127.0.0.1:1")
    with pytest.raises(UserError, match="must be an address"):
        Agent.create(clip_folder, 1, "spcam_x", "ftp://example.org")
    with pytest.raises(UserError, match="plain http://.*--local-network"):
        Agent.create(clip_folder, 1, "spcam_x", "http://search-party.example.org")
    with pytest.raises(UserError, match="no upload token"):
        Agent.create(clip_folder, 1, " ", "https://127.0.0.1:1")
    (clip_folder / ".search-party-uploads.json").write_text(json.dumps({"version": 1, "camera_id": 7, "files": {}}))
    with pytest.raises(UserError, match="belongs to camera 7"):
        Agent.create(clip_folder, 1, "spcam_x", "https://127.0.0.1:1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError:
        return 0, {}


def _serve(data_dir: Path, port: int, log: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_PARTY_")}
    env.update(SEARCH_PARTY_DATA_DIR=str(data_dir), SEARCH_PARTY_EMBEDDER=SHIPPED_EMBEDDER,
               SEARCH_PARTY_DETECTOR="picodet_s_416")
    with log.open("a") as out:
        # Its own process group, so the test can end the server and its worker together.
        return subprocess.Popen([sys.executable, "-m", "search_party.cli", "serve", "--port", str(port), *extra],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # serve stops its worker on the way out
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait(condition, what: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout  # only keeps a broken run from hanging CI
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def test_serve_creates_the_data_folder_on_first_start(tmp_path):
    data_dir = tmp_path / "fresh" / "data"
    port, log = _free_port(), tmp_path / "serve.log"
    proc = _serve(data_dir, port, log, "--no-worker")
    try:
        _wait(lambda: _get_json(f"http://127.0.0.1:{port}/healthz")[0] in (200, 503), "the server", log)
        assert (data_dir / "search_party.db").is_file() and (data_dir / "spool").is_dir()
        assert (data_dir / "secret_key").is_file()  # a local run made and kept its own key
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as page:
            assert page.status == 200 and b"Sign in" in page.read()
    finally:
        _stop(proc)
    assert proc.returncode is not None


def test_serve_runs_the_worker_that_processes_uploaded_clips(tmp_path, clip_folder):
    """`search-party serve` (web + worker) on a prepared data folder; the agent uploads the two
    real clips; the worker finishes them: the dog clip with a dog sighting, the people clip with
    none."""
    settings = settings_for(tmp_path / "data")
    app = create_app(app_config(settings))
    with db_of(app) as db:
        from search_party.community import accounts
        owner = accounts.create_user(db, "served@example.org")
    _, camera_id = add_opted_in_camera(app, "served@example.org")
    with db_of(app) as db:
        _, token = camera_tokens.create_token(db, camera_id, owner.id)
    port, log = _free_port(), tmp_path / "serve.log"
    proc = _serve(settings.data_dir, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get_json(f"{base}/healthz")[0] == 200, "the server", log)
        result = local_agent(clip_folder, camera_id, token, base, say=lambda line: None).scan_once()
        assert result.ok and len(result.uploaded) == 2

        def finished() -> bool:
            status, body = _get_json(f"{base}/api/cameras/{camera_id}/clips", token)
            return status == 200 and all(c["status"] in ("done", "failed") for c in body["clips"])

        _wait(finished, "the worker to process both clips", log, timeout=240)
        clips = {c["filename"]: c for c in _get_json(f"{base}/api/cameras/{camera_id}/clips", token)[1]["clips"]}
        assert clips[DOG_CLIP.name]["status"] == "done" and clips[DOG_CLIP.name]["sightings"] >= 1
        assert clips[PEOPLE_CLIP.name]["status"] == "done" and clips[PEOPLE_CLIP.name]["sightings"] == 0
        assert clips[PEOPLE_CLIP.name]["message"] == "done: no dog or cat in this clip"
    finally:
        _stop(proc)


def test_agent_sends_nothing_while_the_camera_is_paused_or_opted_out(app, camera, clip_folder):
    """The agent asks the camera's state first: paused, then opted out, nothing is posted and
    nothing is marked sent; resumed, the waiting clips go."""
    camera_id, token = camera
    with db_of(app) as db:
        owner = cameras.get_camera(db, camera_id).owner_id
        cameras.set_paused(db, camera_id, owner, True)
    said: list[str] = []
    with LiveServer(app) as server:
        agent = local_agent(clip_folder, camera_id, token, server.url, say=said.append)
        held = agent.scan_once()
        assert held.held == "paused" and not held.ok and server.posts() == 0 and agent.state.files == {}
        assert "not sent: camera" in said[-1]
        with db_of(app) as db:
            cameras.set_paused(db, camera_id, owner, False)
        sent = agent.scan_once()
        assert len(sent.uploaded) == 2 and server.posts() == 2
        shutil.copy2(DOG_CLIP, clip_folder / "later.mp4")
        (clip_folder / "later.mp4").write_bytes((clip_folder / "later.mp4").read_bytes() + b"\0")
        with db_of(app) as db:
            cameras.opt_out(db, camera_id, owner, app.config["SETTINGS"].index_path)
        assert agent.scan_once().held == "opted out" and server.posts() == 2


def test_a_token_reads_only_its_own_cameras_state(app, camera, client, signed_in):
    """Tried: the token on its camera's state (200, no place or name), on another camera's (404),
    and a made-up token (401)."""
    camera_id, token = camera
    signed_in("someone.else@example.org")
    _, other = add_opted_in_camera(app, "someone.else@example.org")
    mine = client.get(f"/api/cameras/{camera_id}/state", headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200
    assert mine.get_json() == {"id": camera_id, "opted_in": True, "paused": False, "accepting": True,
                               "time_zone": None}
    theirs = client.get(f"/api/cameras/{other}/state", headers={"Authorization": f"Bearer {token}"})
    assert theirs.status_code == 404
    forged = client.get(f"/api/cameras/{camera_id}/state", headers={"Authorization": "Bearer spcam_forged"})
    assert forged.status_code == 401
