"""The ownership matrix over every neighbour route (pages, images, API): the right user gets it;
every other signed-in user, and no user, is refused, and nothing changes.  Objects: cameras,
clips, sightings (crops), upload tokens, matches (consent requests), report photos, activity.

"Refused" means: another user gets 404 for what is addressed by camera, clip, sighting or token
(the same answer as for an id that does not exist, so ids cannot be probed) and 403 for a
consent request or a report photo (search_party.community.consent says "not visible to you"); no user gets
the sign-in page (pages) or 401 (API).
"""

from __future__ import annotations

import pytest
from web_helpers import ConsentWorld, api, build_consent_world, csrf_token, db_of

from search_party.community import cameras, consent
from search_party.store import storage


def routes(w: ConsentWorld) -> list[tuple[str, str, dict | None, int, int]]:
    """(method, url, form or JSON data, the owner's status, another user's status), harmless
    routes first, then those that change or delete (run last for the owner)."""
    c, k, s, t, m, p = w.camera_id, w.clip_id, w.sighting_id, w.token_id, w.match_id, w.photo_id
    return [
        ("GET", f"/cameras/{c}", None, 200, 404),
        ("GET", f"/cameras/{c}/opt-out", None, 200, 404),
        ("GET", f"/cameras/{c}/delete", None, 200, 404),
        ("GET", f"/clips/{k}", None, 200, 404),
        ("GET", f"/activity?camera={c}", None, 200, 404),
        ("GET", f"/media/sightings/{s}.jpg", None, 200, 404),
        ("GET", f"/media/matches/{m}/sighting.jpg", None, 200, 403),
        ("GET", f"/media/photos/{p}.jpg", None, 200, 403),
        ("GET", f"/api/cameras/{c}", None, 200, 404),
        ("GET", f"/api/cameras/{c}/clips", None, 200, 404),
        ("GET", f"/api/clips/{k}", None, 200, 404),
        ("GET", f"/api/clips/{k}/sightings", None, 200, 404),
        ("GET", f"/api/cameras/{c}/tokens", None, 200, 404),
        ("POST", f"/cameras/{c}/pause", {}, 302, 404),
        ("POST", f"/cameras/{c}/resume", {}, 302, 404),
        ("POST", f"/api/cameras/{c}/pause", {}, 200, 404),
        ("POST", f"/api/cameras/{c}/resume", {}, 200, 404),
        ("POST", f"/cameras/{c}/opt-in", {"agree": "y"}, 302, 404),
        ("POST", f"/cameras/{c}/tokens", {"label": "x"}, 200, 404),
        ("POST", f"/api/cameras/{c}/tokens", {"label": "y"}, 201, 404),
        ("POST", f"/tokens/{t}/revoke", {}, 302, 404),
        ("POST", f"/api/tokens/{t}/revoke", {}, 200, 404),
        ("POST", f"/api/requests/{m}/share", {}, 200, 403),
        ("POST", f"/requests/{m}/share", {}, 302, 403),  # the same answer again: idempotent
        ("POST", f"/cameras/{c}/opt-out", {}, 302, 404),
        ("POST", f"/api/cameras/{c}/opt-out", {}, 200, 404),
        ("DELETE", f"/api/cameras/{c}", None, 200, 404),
        ("POST", f"/cameras/{c}/delete", {}, 302, 404),
    ]


def call(client, method, url, data):
    if url.startswith("/api/"):
        return api(client, method, url, json=data) if data is not None else api(client, method, url)
    if method == "POST":
        return client.post(url, data={"csrf_token": csrf_token(client), **(data or {})})
    return client.get(url)


@pytest.fixture
def world(app, signed_in) -> ConsentWorld:
    return build_consent_world(app, signed_in)


def snapshot(app, w: ConsentWorld) -> tuple:
    with db_of(app) as db:
        camera = cameras.get_camera(db, w.camera_id)
        tokens = [tuple(r.values()) for r in db.query("SELECT id, revoked_at FROM camera_tokens ORDER BY id")]
        return (camera, len(storage.list_sightings(db)), tokens, consent.get_match(db, w.match_id).state)


def test_every_other_user_and_no_user_is_refused(app, world):
    before = snapshot(app, world)
    anonymous = app.test_client()
    for method, url, data, _, other_status in routes(world):
        for name, client in (("other neighbour", world.other), ("pet owner", world.pet_owner)):
            response = call(client, method, url, data)
            expected = other_status
            if name == "pet owner" and "/media/photos/" in url:
                expected = 200  # their own lost dog's photo
            assert response.status_code == expected, (name, method, url, response.status_code)
            if expected != 200:
                assert b"porch" not in response.data and b"51.5007" not in response.data, (name, url)
        response = call(anonymous, method, url, data)
        if url.startswith("/api/"):
            assert response.status_code == 401, (method, url)
        else:
            assert response.status_code == 302 and "/login" in response.headers["Location"], (method, url)
    assert snapshot(app, world) == before  # nothing changed


def test_lists_show_only_your_own(app, world):
    for client in (world.other, world.pet_owner):
        for url in ("/cameras", "/requests", "/activity", "/api/cameras", "/api/requests",
                    "/api/requests?state=answered", "/api/activity"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert b"porch" not in response.data and b"Max" not in response.data, url
    mine = world.neighbour.get("/requests")
    assert b"Could this be Max?" in mine.data
    assert f"/media/photos/{world.photo_id}.jpg".encode() in mine.data
    assert f"/media/matches/{world.match_id}/sighting.jpg".encode() in mine.data
    assert b"about 100 m from where Max was last seen" in mine.data or b" m from where Max" in mine.data
    activity = world.neighbour.get("/api/activity").json["activity"]
    assert {e["event"] for e in activity} >= {"scored", "asked"} and all("Max" in e["text"] for e in activity)


def test_the_owner_gets_every_route(app, world):
    # The last route deletes the camera the API's DELETE already deleted: the form's delete is
    # test_web_neighbour.test_delete_camera.
    for method, url, data, owner_status, _ in routes(world)[:-1]:
        response = call(world.neighbour, method, url, data)
        assert response.status_code == owner_status, (method, url, response.get_data(as_text=True)[:500])


def test_pet_owner_sees_the_crop_only_after_the_neighbour_shares(app, world):
    crop = f"/media/matches/{world.match_id}/sighting.jpg"
    assert world.pet_owner.get(crop).status_code == 403
    shared = world.neighbour.post(f"/requests/{world.match_id}/share",
                                  data={"csrf_token": csrf_token(world.neighbour)}, follow_redirects=True)
    assert b"Shared:" in shared.data and b"you shared it" in shared.data
    image = world.pet_owner.get(crop)
    assert image.status_code == 200 and image.data[:2] == b"\xff\xd8"
    assert world.other.get(crop).status_code == 403
    changed = api(world.neighbour, "POST", f"/api/requests/{world.match_id}/decline")
    assert changed.status_code == 400 and "cannot be changed" in changed.json["error"]


def test_declined_request_shows_nothing(app, world):
    declined = api(world.neighbour, "POST", f"/api/requests/{world.match_id}/decline")
    assert declined.status_code == 200 and declined.json["state"] == "declined"
    assert world.pet_owner.get(f"/media/matches/{world.match_id}/sighting.jpg").status_code == 403
    answered = world.neighbour.get("/api/requests?state=answered").json["requests"]
    assert [r["state"] for r in answered] == ["declined"]
