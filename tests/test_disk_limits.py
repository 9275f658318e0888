"""The disk cannot be filled through the uploads: a per-camera daily byte quota (429) and a
free-space floor (507) refuse uploads before they are read, from the API and from the upload page,
storing nothing; below half the floor the worker pauses and leaves its clips queued; /healthz says
which and why.  The real app, real clips (tests/fixtures/videos), the real worker task body and
the real free space of the disk the test's data folder is on (the floor is set relative to it)."""

from __future__ import annotations

import shutil

import pytest
from web_helpers import (
    DOG_CLIP,
    PEOPLE_CLIP,
    LiveServer,
    add_opted_in_camera,
    app_config,
    csrf_token,
    db_of,
    sign_in,
    upload_via_api,
)

from search_party import disk_space
from search_party.agent.client import MAX_TRIES
from search_party.agent.watch import Agent
from search_party.community import accounts, camera_tokens
from search_party.community.limits import RateLimited
from search_party.config import load_settings
from search_party.errors import UserError
from search_party.ingest import jobs, spool, uploads
from search_party.store import storage
from web import create_app

MB = 1024 * 1024


def neighbour_app(settings, **changes):
    app = create_app(app_config(settings.model_copy(update=changes)))
    with db_of(app) as db:
        accounts.create_user(db, "neighbour@example.org", "a long enough passphrase")
    client = app.test_client()
    sign_in(client, "neighbour@example.org")
    _, camera_id = add_opted_in_camera(app, "neighbour@example.org")
    return app, client, camera_id


def post_page(client, camera_id, path):
    with path.open("rb") as fh:
        return client.post(f"/cameras/{camera_id}/clips", content_type="multipart/form-data",
                           data={"csrf_token": csrf_token(client), "clips": [(fh, path.name)]})


def stored(app, camera_id):
    with db_of(app) as db:
        return storage.list_clips(db, camera_id=camera_id)


def test_a_camera_over_its_daily_bytes_gets_429_and_nothing_more_is_stored(settings, tmp_path):
    """Tried: a second clip that fits the quota alone but not after the first, by token, by page
    and by the domain call itself (which checks inside the registering transaction)."""
    quota_mb = (PEOPLE_CLIP.stat().st_size + DOG_CLIP.stat().st_size / 2) / MB
    app, client, camera_id = neighbour_app(settings, camera_daily_upload_mb=quota_mb)
    with db_of(app) as db:
        owner = accounts.find_account(db, "neighbour@example.org")
        secret = camera_tokens.create_token(db, camera_id, owner.id, "garage PC")[1]
    bearer = {"Authorization": f"Bearer {secret}"}
    anonymous = app.test_client()
    first = upload_via_api(anonymous, camera_id, DOG_CLIP, **bearer)
    assert first.status_code == 201

    by_token = upload_via_api(anonymous, camera_id, PEOPLE_CLIP, **bearer)
    assert by_token.status_code == 429
    message = by_token.json["error"]
    assert "MB of clips in the last 24 hours" in message and "more is accepted from" in message
    assert "nothing was stored" in message
    by_page = post_page(client, camera_id, PEOPLE_CLIP)
    assert by_page.status_code == 429 and b"more is accepted from" in by_page.data
    with db_of(app) as db, PEOPLE_CLIP.open("rb") as fh, pytest.raises(RateLimited, match="more is accepted"):
        uploads.receive_clip(app.config["SETTINGS"], db, camera_id, fh, PEOPLE_CLIP.name)

    assert [c.filename for c in stored(app, camera_id)] == [DOG_CLIP.name]
    assert [p.name for p in settings.spool_dir.iterdir()] == [f"clip-{first.json['clips'][0]['id']}"]
    assert list((settings.data_dir / "uploads").iterdir()) == []
    # The quota is per camera: the same owner's second camera still uploads.
    _, other_camera = add_opted_in_camera(app, "neighbour@example.org", name="gate")
    assert upload_via_api(client, other_camera, PEOPLE_CLIP).status_code == 201


def test_uploads_stop_at_the_free_space_floor_and_the_worker_pauses_below_half_of_it(settings, tmp_path):
    free = disk_space.free_bytes(settings)
    assert free > 0
    # Uploads refused: the floor is 1.5 times what is free (the worker, at half the floor, works).
    app, client, camera_id = neighbour_app(settings, min_free_disk_mb=free * 1.5 / MB)
    by_api = upload_via_api(client, camera_id, DOG_CLIP)
    assert by_api.status_code == 507 and "nearly out of disk space" in by_api.json["error"]
    by_page = post_page(client, camera_id, DOG_CLIP)
    assert by_page.status_code == 507 and b"nearly out of disk space" in by_page.data
    assert stored(app, camera_id) == [] and list(settings.spool_dir.iterdir()) == []
    health = app.test_client().get("/healthz")
    assert health.status_code == 503
    disk = health.json["disk"]
    assert disk["uploads_refused"] and not disk["worker_paused"]
    assert "uploads are refused" in disk["problems"][0] and str(settings.data_dir) not in health.get_data(as_text=True)

    # A clip volunteered earlier (at the shell) waits; below half the floor the worker leaves it.
    with db_of(app) as db:
        clip = spool.register_clip(settings, db, DOG_CLIP, camera_id).clip
    paused = settings.model_copy(update={"min_free_disk_mb": free * 3 / MB})
    queue = jobs.make_queue(paused)
    queue.ingest_task.call_local(clip.id)  # the worker's task body, as the consumer runs it
    with db_of(app) as db:
        assert storage.get_clip(db, clip.id).status == "queued"
        assert jobs.recover(paused, db, queue).enqueued == []  # nothing handed out while paused
    paused_app = create_app(app_config(paused))
    disk = paused_app.test_client().get("/healthz").json["disk"]
    assert disk["uploads_refused"] and disk["worker_paused"]
    assert any("the worker is paused" in p for p in disk["problems"])

    # Room again: the same clip is processed, and uploads are accepted.
    roomy = settings.model_copy(update={"min_free_disk_mb": 0})
    jobs.make_queue(roomy).ingest_task.call_local(clip.id)
    with db_of(app) as db:
        assert storage.get_clip(db, clip.id).status == "done"
    roomy_app = create_app(app_config(roomy))
    roomy_health = roomy_app.test_client().get("/healthz").json["disk"]
    assert not roomy_health["uploads_refused"] and roomy_health["problems"] == []


def test_the_camera_agent_keeps_a_clip_the_disk_had_no_room_for_and_sends_it_later(settings, tmp_path):
    """Tried: the real uploader against a real server short of disk (507), then with room."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy2(DOG_CLIP, folder / DOG_CLIP.name)
    full, _, camera_id = neighbour_app(settings, min_free_disk_mb=disk_space.free_bytes(settings) * 1.5 / MB)
    with db_of(full) as db:
        owner = accounts.find_account(db, "neighbour@example.org")
        secret = camera_tokens.create_token(db, camera_id, owner.id, "nvr")[1]
    waits: list[float] = []
    with LiveServer(full) as server:
        agent = Agent.create(folder, camera_id, secret, server.url, settle_s=0, sleep=waits.append, local_network=True,
                             say=lambda line: None)
        first = agent.scan_once()
    assert first.postponed == [DOG_CLIP.name] and first.refused == [] and len(waits) == MAX_TRIES - 1
    roomy = create_app(app_config(settings.model_copy(update={"min_free_disk_mb": 0})))
    with LiveServer(roomy) as server:
        later = Agent.create(folder, camera_id, secret, server.url, settle_s=0, sleep=waits.append, local_network=True,
                             say=lambda line: None).scan_once()
    assert later.uploaded == [DOG_CLIP.name] and [c.filename for c in stored(roomy, camera_id)] == [DOG_CLIP.name]


def test_the_quota_and_floor_settings_refuse_nonsense(monkeypatch):
    """Tried: a quota of 0 MB, a negative floor, and words."""
    for variable, value in (("SEARCH_PARTY_CAMERA_DAILY_UPLOAD_MB", "0"),
                            ("SEARCH_PARTY_MIN_FREE_DISK_MB", "-5"),
                            ("SEARCH_PARTY_MIN_FREE_DISK_MB", "lots")):
        monkeypatch.setenv(variable, value)
        with pytest.raises(UserError, match=variable):
            load_settings()
        monkeypatch.delenv(variable)
    assert load_settings(min_free_disk_mb="0").min_free_disk_mb == 0  # 0 turns the floor off
