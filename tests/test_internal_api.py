"""The internal API of remote ingest workers (web/internal.py over search_party.ingest.remote_intake):
only an active worker token opens it; a worker's result is checked before anything is stored and
stored once, under its own live claim; a worker whose lease ran out cannot store a second copy;
the worker's own client (search_party.ingest.remote_worker) against the real app on a real HTTP
server.  Real clips (tests/short_clips.py), the real pipeline and models, a real SQLite file."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from short_clips import dog_clip
from web_helpers import LiveServer, db_of, json_of

from search_party import vision
from search_party.community import camera_tokens
from search_party.ingest import jobs, spool, worker_tokens
from search_party.ingest.options import IngestOptions
from search_party.ingest.pipeline import process_clip
from search_party.ingest.remote_wire import to_wire
from search_party.ingest.remote_worker import InternalClient, RemoteWorker, check_remote_url
from search_party.store import storage
from search_party.store.db import to_db_time, utcnow


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def queued_clip(app, tmp_path: Path, camera_id: int, seed: int = 0) -> storage.Clip:
    with db_of(app) as db:
        path = dog_clip(tmp_path / f"porch-{seed}.mp4", seed=seed)
        return spool.register_clip(app.config["SETTINGS"], db, path, camera_id).clip


def new_token(app, label: str = "ingest") -> tuple[int, str]:
    with db_of(app) as db:
        token, secret = worker_tokens.create_token(db, label)
    return token.id, secret


def claim(client, clip_id: int, secret: str) -> dict[str, Any]:
    return json_of(client.post(f"/internal/v1/clips/{clip_id}/claim", headers=bearer(secret)))


def stored(app, clip_id: int) -> tuple[str, int]:
    with db_of(app) as db:
        clip = storage.get_clip(db, clip_id)
        return clip.status, len(storage.list_sightings(db, clip_id=clip_id))


@pytest.fixture(scope="module")
def wire(tmp_path_factory) -> dict[str, Any]:
    """A real processed clip (one dog) as a worker posts it."""
    from domain_world import settings_for

    folder = tmp_path_factory.mktemp("wire")
    result = process_clip(dog_clip(folder / "porch.mp4"), start_time=None,
                          models=vision.load_models(settings_for(folder / "data")), options=IngestOptions())
    assert len(result.sightings) == 1
    return to_wire(result)


def test_the_internal_api_takes_only_an_active_worker_token(app, client, neighbour, tmp_path):
    """Tried: no credential, a camera's upload token, a signed-in session, an unknown token, a
    worker token sent as Basic, a revoked worker token; on reading the models and on claiming
    (a write without a bearer token meets the CSRF check first: 400)."""
    clip = queued_clip(app, tmp_path, neighbour.camera_id)
    with db_of(app) as db:
        _, upload_token = camera_tokens.create_token(db, neighbour.camera_id, neighbour.user_id)
    token_id, secret = new_token(app)
    revoked_id, revoked = new_token(app, "old")
    with db_of(app) as db:
        worker_tokens.revoke_token(db, revoked_id)
    refused = [({}, client), (bearer(upload_token), client), ({}, neighbour.client),
               (bearer("spwrk_not-a-real-token"), client), ({"Authorization": f"Basic {secret}"}, client),
               (bearer(revoked), client)]
    for headers, who in refused:
        for method, url in (("GET", "/internal/v1/models"), ("POST", f"/internal/v1/clips/{clip.id}/claim")):
            reply = who.open(url, method=method, headers=headers)
            if method == "POST" and "Bearer" not in headers.get("Authorization", ""):
                assert reply.status_code == 400, (headers, url)  # the app's CSRF check comes first
                continue
            assert reply.status_code == 401, (headers, url)
            assert "worker token" in json_of(reply)["error"]
    assert stored(app, clip.id) == ("queued", 0)  # nothing was claimed
    models = json_of(client.get("/internal/v1/models", headers=bearer(secret)))
    assert models["embedder_version"] == vision.load_models(app.config["SETTINGS"]).embedder.version
    assert claim(client, clip.id, secret)["claim"].startswith(f"remote#{token_id}:")


def _bad_results(good: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def changed(edit) -> dict[str, Any]:
        result = copy.deepcopy(good)
        edit(result["sightings"][0])
        return result

    def vector(values: np.ndarray) -> str:
        return base64.b64encode(np.asarray(values, "<f4").tobytes()).decode()

    dim = len(np.frombuffer(base64.b64decode(good["sightings"][0]["vector"]), "<f4"))
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    nan = np.full(dim, np.nan, np.float32)
    return {
        "a person": changed(lambda s: s.update(label="person")),
        "another embedder's vectors": changed(lambda s: s.update(model_version="lite0-other-0000")),
        "a vector of the wrong dimension": changed(
            lambda s: s.update(vector=vector(np.ones(dim // 2) / np.sqrt(dim // 2)))),
        "a NaN vector": changed(lambda s: s.update(vector=vector(nan))),
        "a vector not of unit length": changed(lambda s: s.update(vector=vector(np.full(dim, 1.0)))),
        "crop vectors not of unit length": changed(lambda s: s.update(crop_vectors=vector(np.zeros(dim)))),
        "a PNG thumbnail": changed(lambda s: s.update(thumbnail_jpeg=base64.b64encode(png.getvalue()).decode())),
        "an empty box": changed(lambda s: s.update(box=[10, 10, 10, 40])),
        "a time with no offset": changed(lambda s: s.update(first_time="2025-06-01T08:00:00")),
        "no sightings list": {"stats": good["stats"]},
    }


def test_a_workers_result_is_checked_then_stored_once_under_its_own_claim(app, client, neighbour, tmp_path, wire):
    """Tried: each result in _bad_results (a person, another embedder, wrong dimension, NaN, not
    unit length, a PNG thumbnail, an empty box, a naive time, no sightings), another worker's
    token with the right claim, the same good result posted twice."""
    clip = queued_clip(app, tmp_path, neighbour.camera_id)
    _, secret = new_token(app)
    _, other = new_token(app, "other")
    job = claim(client, clip.id, secret)
    assert client.post(f"/internal/v1/clips/{clip.id}/claim", headers=bearer(other)).status_code == 409
    body = client.get(f"/internal/v1/clips/{clip.id}/file", headers={**bearer(secret), "X-Claim": job["claim"]})
    assert hashlib.sha256(body.get_data()).hexdigest() == job["sha256"] == clip.sha256
    url = f"/internal/v1/clips/{clip.id}/result"
    for what, result in _bad_results(wire).items():
        reply = client.post(url, json={"claim": job["claim"], "result": result}, headers=bearer(secret))
        assert reply.status_code == 400, what
        assert "nothing was stored" in json_of(reply)["error"], what
        assert stored(app, clip.id) == ("processing", 0), what
    thief = client.post(url, json={"claim": job["claim"], "result": wire}, headers=bearer(other))
    assert thief.status_code == 403
    assert json_of(client.post(url, json={"claim": job["claim"], "result": wire}, headers=bearer(secret))) == {
        "clip_id": clip.id, "sightings": 1}
    again = client.post(url, json={"claim": job["claim"], "result": wire}, headers=bearer(secret))
    assert again.status_code == 409
    assert stored(app, clip.id) == ("done", 1)
    assert list(app.config["SETTINGS"].spool_dir.iterdir()) == []  # the footage is gone


def test_a_worker_whose_lease_ran_out_cannot_store_a_second_copy(app, client, neighbour, tmp_path, wire):
    settings = app.config["SETTINGS"]
    clip = queued_clip(app, tmp_path, neighbour.camera_id)
    _, slow = new_token(app, "slow")
    _, fast = new_token(app, "fast")
    first = claim(client, clip.id, slow)
    beat = client.post(f"/internal/v1/clips/{clip.id}/heartbeat", json={"claim": first["claim"]},
                       headers=bearer(slow))
    assert beat.status_code == 200
    with db_of(app) as db:  # the slow worker falls silent for longer than its lease
        silent = utcnow() - timedelta(seconds=settings.worker_lease_seconds + 1)
        db.execute("UPDATE clips SET claimed_at = ? WHERE id = ?", [to_db_time(silent), clip.id])
        assert jobs.recover(settings, db, jobs.make_queue(settings)).requeued == [clip.id]
    second = claim(client, clip.id, fast)
    assert client.post(f"/internal/v1/clips/{clip.id}/result", json={"claim": second["claim"], "result": wire},
                       headers=bearer(fast)).status_code == 200
    for path, body in (("heartbeat", {"claim": first["claim"]}),
                       ("result", {"claim": first["claim"], "result": wire}),
                       ("failure", {"claim": first["claim"], "reason": "too late"})):
        late = client.post(f"/internal/v1/clips/{clip.id}/{path}", json=body, headers=bearer(slow))
        assert late.status_code == 409, path
    with db_of(app) as db:
        done = storage.get_clip(db, clip.id)
    assert (done.status, done.attempts, done.sightings_count) == ("done", 2, 1)
    assert stored(app, clip.id) == ("done", 1)


def test_the_remote_workers_own_client_processes_a_clip_and_reports_a_bad_one(app, neighbour, tmp_path):
    """Through real HTTP: download (sha256 checked), heartbeats, the pipeline, the result.  Tried:
    a text file named .mp4 (failed with the pipeline's reason), and a clip already done."""
    good = queued_clip(app, tmp_path, neighbour.camera_id)
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video, just a text file with the wrong name\n")
    with db_of(app) as db:
        bad = spool.register_clip(app.config["SETTINGS"], db, notes, neighbour.camera_id).clip
    _, secret = new_token(app)
    folder = tmp_path / "worker"
    folder.mkdir()
    with LiveServer(app) as live:
        worker = RemoteWorker(app.config["SETTINGS"], InternalClient(live.url, secret), folder)
        worker.check_models()
        assert worker.run_clip(good.id) == "done: 1 sighting(s)"
        assert worker.run_clip(good.id) == "not queued: nothing to do"
        assert worker.run_clip(bad.id).startswith("failed: ")
    assert stored(app, good.id) == ("done", 1)
    with db_of(app) as db:
        failed = storage.get_clip(db, bad.id)
    assert failed.status == "failed" and "not a video" in failed.reason
    assert list(folder.iterdir()) == []  # no footage kept on the worker


def test_worker_tokens_are_made_listed_and_revoked_from_the_shell(app, client, runner):
    made = runner("worker-token", "add", "--label", "ingest-2").output
    secret = made.strip().splitlines()[-1]
    assert secret.startswith("spwrk_")
    assert client.get("/internal/v1/models", headers=bearer(secret)).status_code == 200
    listed = runner("worker-token", "list").output
    assert "ingest-2" in listed and "active" in listed and secret not in listed
    token_id = listed.split("\t")[0]
    runner("worker-token", "revoke", token_id)
    assert client.get("/internal/v1/models", headers=bearer(secret)).status_code == 401
    assert "revoked" in runner("worker-token", "list").output


def test_a_remote_worker_refuses_plain_http_unless_told_the_network_is_private():
    """Tried: http:// without --plain-http, an address with no host, ftp://."""
    for url in ("http://ingest.example:8000", "https://", "ftp://server.example"):
        with pytest.raises(Exception, match="--remote"):
            check_remote_url(url)
    assert check_remote_url("http://10.0.0.2:8000/", plain_http=True) == "http://10.0.0.2:8000"
