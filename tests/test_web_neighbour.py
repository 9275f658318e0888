"""The camera owner's pages and API on the real app: add a camera (map form or typed), opt in,
pause, upload real clips (tests/fixtures/videos) with dedupe and the size limit, the processing
status after the worker's task body ran (``ingest.run_clip``, called here: only the status
matters in these tests; tests/test_web_agent.py runs the real worker), opt out, upload tokens."""

from __future__ import annotations

import io

from web_helpers import (
    DOG_CLIP,
    PEOPLE_CLIP,
    add_opted_in_camera,
    api,
    app_config,
    csrf_token,
    db_of,
    post,
    process_clip_now,
    sign_in,
    upload_via_api,
)

from search_party.community import accounts, cameras
from search_party.store import storage
from web import create_app


def _clips(app, camera_id):
    with db_of(app) as db:
        return storage.list_clips(db, camera_id=camera_id)


def test_add_camera_with_typed_coordinates(app, signed_in):
    client = signed_in("new.neighbour@example.org")
    form = client.get("/cameras/new")
    assert form.status_code == 200
    assert b"vendor/leaflet/leaflet.js" in form.data and b'data-lat-input="lat"' in form.data
    added = post(client, "/cameras/new", {"lat": " 51.5007 ", "lon": "-0.1246", "name": "front door",
                                          "retention_days": "14"})
    assert added.status_code == 302
    page = client.get(added.headers["Location"])
    assert b"front door" in page.data and b"Opted out" in page.data and b"51.50070" in page.data
    assert b"Opt this camera in?" in page.data and b"never recognised" in page.data


def test_malformed_coordinates_are_refused_with_a_clear_message(app, signed_in):
    """Tried: words, NaN, infinity, out-of-range latitude (swapped pair), out-of-range longitude,
    a missing value, an absurd retention; each is a 400 naming the problem, and no camera is made."""
    client = signed_in("typo@example.org")
    cases = [
        ({"lat": "fifty-one", "lon": "-0.12"}, b"is not a number"),
        ({"lat": "nan", "lon": "-0.12"}, b"is not a number"),
        ({"lat": "51.5", "lon": "inf"}, b"is not a number"),
        ({"lat": "51.5", "lon": "200"}, b"outside -180..180"),
        ({"lat": "151.5", "lon": "-0.12"}, b"are latitude and longitude swapped?"),
        ({"lat": "", "lon": "-0.12"}, b"latitude is missing"),
        ({"lat": "51.5", "lon": "-0.12", "retention_days": "9999"}, b"1 to 365 days"),
    ]
    for data, message in cases:
        response = post(client, "/cameras/new", data)
        assert response.status_code == 400, data
        assert message in response.data, (data, response.get_data(as_text=True)[:2000])
    api_refused = api(client, "POST", "/api/cameras", json={"lat": "north", "lon": 2})
    assert api_refused.status_code == 400 and "is not a number" in api_refused.json["error"]
    with db_of(app) as db:
        assert cameras.list_cameras(db) == []


def test_opt_in_needs_the_box_ticked_then_pause_and_resume(app, signed_in):
    client = signed_in("careful@example.org")
    created = post(client, "/cameras/new", {"lat": "48.8584", "lon": "2.2945"})
    camera_id = int(created.headers["Location"].rsplit("/", 1)[1])
    post(client, f"/cameras/{camera_id}/opt-in")  # box not ticked
    with db_of(app) as db:
        assert not cameras.get_camera(db, camera_id).opted_in
    assert post(client, f"/cameras/{camera_id}/opt-in", {"agree": "y"}).status_code == 302
    assert post(client, f"/cameras/{camera_id}/pause").status_code == 302
    with db_of(app) as db:
        camera = cameras.get_camera(db, camera_id)
        assert camera.opted_in and camera.paused and camera.opted_in_at is not None
    paused_upload = upload_via_api(client, camera_id, DOG_CLIP)
    assert paused_upload.status_code == 400 and "paused" in paused_upload.json["error"]
    assert post(client, f"/cameras/{camera_id}/resume").status_code == 302
    refused = api(client, "POST", f"/api/cameras/{camera_id}/opt-in", json={})
    assert refused.status_code == 400 and "explicit consent" in refused.json["error"]


def test_upload_status_dedupe_and_sightings(app, neighbour, settings):
    client, camera_id = neighbour.client, neighbour.camera_id
    first = upload_via_api(client, camera_id, DOG_CLIP)
    assert first.status_code == 201, first.json
    clip = first.json["clips"][0]
    assert clip["status"] == "queued" and clip["duplicate"] is False
    assert client.get(f"/api/clips/{clip['id']}").json["message"] == "queued: waiting for the worker"

    again = upload_via_api(client, camera_id, DOG_CLIP)  # a double submit: same bytes
    assert again.status_code == 200 and again.json["clips"][0]["duplicate"] is True
    assert again.json["clips"][0]["id"] == clip["id"]
    assert len(_clips(app, camera_id)) == 1

    done = process_clip_now(settings, clip["id"])
    status = client.get(f"/api/clips/{clip['id']}").json
    assert status["status"] == "done" and status["sightings"] == done.sightings_count >= 1
    assert status["message"].startswith("done: 1 animal") or status["message"].startswith("done: ")
    sightings = client.get(f"/api/clips/{clip['id']}/sightings").json["sightings"]
    assert sightings and sightings[0]["label"] == "dog"
    image = client.get(sightings[0]["image"])
    assert image.status_code == 200 and image.mimetype == "image/jpeg" and image.data[:2] == b"\xff\xd8"
    page = client.get(f"/clips/{clip['id']}")
    assert page.status_code == 200 and b"Animals found" in page.data
    assert b"done:" in client.get(f"/cameras/{camera_id}").data


def test_form_upload_of_several_clips_and_a_failed_clip(app, neighbour, settings):
    """The no-JavaScript form: two real clips in one post, plus a text file named .mp4 (tried:
    a file that is not a video), which is accepted as a clip and then fails with a reason."""
    client, camera_id = neighbour.client, neighbour.camera_id
    with DOG_CLIP.open("rb") as dog, PEOPLE_CLIP.open("rb") as people:
        response = client.post(f"/cameras/{camera_id}/clips", data={
            "csrf_token": csrf_token(client),
            "clips": [(dog, DOG_CLIP.name), (people, PEOPLE_CLIP.name),
                      (io.BytesIO(b"this is not a video at all"), "notes.mp4"),
                      (io.BytesIO(b"hello"), "notes.txt")]},
            content_type="multipart/form-data", follow_redirects=True)
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "notes.txt: &#39;notes.txt&#39; is not a video clip" in text
    assert text.count("queued: waiting for the worker") >= 3
    clips = {c.filename: c for c in _clips(app, camera_id)}
    assert set(clips) == {DOG_CLIP.name, PEOPLE_CLIP.name, "notes.mp4"}
    failed = process_clip_now(settings, clips["notes.mp4"].id)
    assert failed.status == "failed"
    status = client.get(f"/api/clips/{failed.id}").json
    assert status["status"] == "failed" and status["reason"] and status["message"].startswith("failed: ")


def test_oversize_upload_gets_413_and_nothing_is_stored(settings):
    """Tried: a real 567 kB clip against a 512 kB limit, by the API and by the form."""
    app = create_app(app_config(settings, MAX_CONTENT_LENGTH=512 * 1024))
    with db_of(app) as db:
        accounts.create_user(db, "big@example.org", "a long enough passphrase")
    client = app.test_client()
    sign_in(client, "big@example.org")
    _, camera_id = add_opted_in_camera(app, "big@example.org")
    assert PEOPLE_CLIP.stat().st_size > 512 * 1024
    by_api = upload_via_api(client, camera_id, PEOPLE_CLIP)
    assert by_api.status_code == 413
    assert "larger than this server accepts" in by_api.json["error"] and "512 kB" in by_api.json["error"]
    with PEOPLE_CLIP.open("rb") as fh:
        by_form = client.post(f"/cameras/{camera_id}/clips", data={"csrf_token": csrf_token(client),
                                                                     "clips": [(fh, PEOPLE_CLIP.name)]},
                              content_type="multipart/form-data")
    assert by_form.status_code == 413 and b"nothing was stored" in by_form.data
    assert _clips(app, camera_id) == []
    assert list(settings.spool_dir.iterdir()) == []
    uploads = settings.data_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_opt_out_says_what_it_deletes_then_deletes_at_once(app, neighbour, settings):
    client, camera_id = neighbour.client, neighbour.camera_id
    clip_id = upload_via_api(client, camera_id, DOG_CLIP).json["clips"][0]["id"]
    process_clip_now(settings, clip_id)
    confirm = client.get(f"/cameras/{camera_id}/opt-out")
    assert confirm.status_code == 200
    assert b"deletes now" in confirm.data and b"1 clip and" in confirm.data
    with db_of(app) as db:
        assert storage.list_sightings(db, camera_ids=[camera_id])
    done = post(client, f"/cameras/{camera_id}/opt-out", follow_redirects=True)
    assert b"Opted out" in done.data
    with db_of(app) as db:
        assert storage.list_sightings(db, camera_ids=[camera_id]) == []
        assert storage.list_clips(db, camera_id=camera_id) == []
        assert not cameras.get_camera(db, camera_id).opted_in
    refused = upload_via_api(client, camera_id, DOG_CLIP)
    assert refused.status_code == 400 and "not opted in" in refused.json["error"]


def test_delete_camera(app, neighbour):
    client, camera_id = neighbour.client, neighbour.camera_id
    assert b"cannot be undone" in client.get(f"/cameras/{camera_id}/delete").data
    assert post(client, f"/cameras/{camera_id}/delete").headers["Location"] == "/cameras"
    with db_of(app) as db:
        assert cameras.list_cameras(db) == []


def test_upload_tokens_are_shown_once_stored_hashed_and_revocable(app, neighbour):
    client, camera_id = neighbour.client, neighbour.camera_id
    page = post(client, f"/cameras/{camera_id}/tokens", {"label": "garage PC"})
    assert page.status_code == 200 and b"shown only this once" in page.data
    secret = page.get_data(as_text=True).split('id="token" class="mono" readonly value="')[1].split('"')[0]
    assert secret.startswith("spcam_")
    with db_of(app) as db:
        stored = [row["token_sha256"] for row in db.query("SELECT token_sha256 FROM camera_tokens")]
    assert stored and secret not in stored[0]
    assert b"garage PC" in client.get(f"/cameras/{camera_id}").data

    anonymous = app.test_client()
    bearer = {"Authorization": f"Bearer {secret}"}
    uploaded = upload_via_api(anonymous, camera_id, DOG_CLIP, **bearer)
    assert uploaded.status_code == 201  # no session, no CSRF token: the token is enough
    clip_id = uploaded.json["clips"][0]["id"]
    assert anonymous.get(f"/api/clips/{clip_id}", headers=bearer).json["status"] == "queued"
    assert anonymous.get(f"/api/cameras/{camera_id}/clips", headers=bearer).status_code == 200
    for url in ("/api/cameras", f"/api/cameras/{camera_id}", "/api/requests", f"/api/clips/{clip_id}/sightings"):
        assert anonymous.get(url, headers=bearer).status_code == 403, url  # only uploads and status
    assert anonymous.post(f"/api/cameras/{camera_id}/opt-out", headers=bearer).status_code == 403

    token_id = client.get(f"/api/cameras/{camera_id}/tokens").json["tokens"][0]["id"]
    assert post(client, f"/tokens/{token_id}/revoke").status_code == 302
    revoked = upload_via_api(anonymous, camera_id, PEOPLE_CLIP, **bearer)
    assert revoked.status_code == 401 and "unknown or revoked" in revoked.json["error"]
    wrong = anonymous.get(f"/api/clips/{clip_id}", headers={"Authorization": "Bearer spcam_guess"})
    assert wrong.status_code == 401


def test_api_write_on_a_session_needs_the_csrf_header(neighbour, app):
    """Tried: pause by the JSON API with the session cookie but no X-CSRFToken header."""
    response = neighbour.client.post(f"/api/cameras/{neighbour.camera_id}/pause")
    assert response.status_code == 400 and "did not come from this site" in response.json["error"]
    with db_of(app) as db:
        assert not cameras.owned_camera(db, neighbour.camera_id, neighbour.user_id).paused
    ok = api(neighbour.client, "POST", f"/api/cameras/{neighbour.camera_id}/pause")
    assert ok.status_code == 200 and ok.json["paused"] is True
