"""Found a dog: anyone signed in posts a found pet; matching lost reports nearby are told at once
and the two sides can write through the relay.  Real photos of fixture dog 182 from other
sequences than the owner's, a photo of another dog, real models, real SQLite."""

from __future__ import annotations

import pytest
from owner_world import (
    FINDER_PHOTO,
    OTHER_DOG_PHOTO,
    PERSON_PHOTO,
    account,
    build_owner_world,
    local_minutes_ago,
    post_found,
)
from web_helpers import api, db_of, post

from search_party.community import notifications, reports


@pytest.fixture
def world(app):
    return build_owner_world(app, share=False)


def _form_found(client, photo, **fields):
    data = {"species": "dog", "lat": "51.5030", "lon": "-0.1200", "found_at": local_minutes_ago(30),
            "utc_offset": "0", "description": "sitting by the bakery", **fields}
    with photo.open("rb") as fh:
        return post(client, "/found/new", {**data, "photos": (fh, photo.name)}, content_type="multipart/form-data")


def test_a_found_dog_is_matched_with_the_lost_report_and_both_are_told(world, app):
    finder = account(app, "finder@example.org", display_name="Jo")
    assert finder.get("/found/new").status_code == 200
    made = _form_found(finder, FINDER_PHOTO)
    assert made.status_code == 302
    found_id = int(made.headers["Location"].rsplit("/", 1)[1])

    page = finder.get(f"/found/{found_id}").get_data(as_text=True)
    assert "Rex" in page and f"/contact/lost/{world.report_id}" in page
    with db_of(app) as db:
        lost_photo = reports.get_lost_report(db, world.report_id).photo_ids[0]
        found_photo = reports.get_found_report(db, found_id).photo_ids[0]
        finder_id = reports.get_found_report(db, found_id).reporter_id
        told = {n.user_id for n in notifications.inbox(db, world.owner_id) + notifications.inbox(db, finder_id)
                if n.kind == "found_match"}
    assert told == {world.owner_id, finder_id}
    assert finder.get(f"/media/photos/{lost_photo}.jpg").status_code == 200  # each side sees the other's photo
    assert world.owner.get(f"/media/photos/{found_photo}.jpg").status_code == 200
    assert world.stranger.get(f"/media/photos/{found_photo}.jpg").status_code == 403

    owner_page = world.owner.get(f"/reports/{world.report_id}").get_data(as_text=True)
    assert "1 found dog that look like Rex" in owner_page and f"/contact/found/{found_id}" in owner_page
    matches = api(world.owner, "GET", f"/api/reports/{world.report_id}/found-matches").json["found_matches"]
    assert [m["found_report_id"] for m in matches] == [found_id] and matches[0]["source"] == "neighbour"

    detail = api(finder, "GET", f"/api/found/{found_id}").json
    assert [m["pet_name"] for m in detail["matches"]] == ["Rex"]
    assert "lat" not in detail["matches"][0]  # the owner's pin is not the finder's to know
    assert [r["id"] for r in api(finder, "GET", "/api/found").json["found"]] == [found_id]


def test_another_dog_or_no_dog_is_not_matched(world, app):
    finder = account(app, "finder@example.org")
    other = post_found(finder, OTHER_DOG_PHOTO, submission_key="tap-1")
    assert other.status_code == 201 and other.json["matches"] == []
    refused = _form_found(finder, PERSON_PHOTO)  # tried: a photo of a person
    assert refused.status_code == 400 and "no dog found in photo 1" in refused.get_data(as_text=True)
    again = post_found(finder, OTHER_DOG_PHOTO, submission_key="tap-1")  # a double tap
    assert again.status_code == 200 and again.json["report"]["id"] == other.json["report"]["id"]


def test_closing_a_found_report(world, app):
    finder = account(app, "finder@example.org")
    found_id = post_found(finder).json["report"]["id"]
    assert post(finder, f"/found/{found_id}/close").status_code == 302
    assert api(finder, "GET", f"/api/found/{found_id}").json["report"]["status"] == "closed"
    assert b"It is home" not in finder.get(f"/found/{found_id}").data


def test_ownership_matrix_and_csrf(world, app):
    finder = account(app, "finder@example.org")
    found_id = post_found(finder).json["report"]["id"]
    anonymous = app.test_client()
    for url in (f"/found/{found_id}", f"/api/found/{found_id}"):
        assert finder.get(url).status_code == 200, url
        for other in (world.owner, world.neighbour, world.stranger):  # the matched owner too
            assert other.get(url).status_code == 403, url
    assert anonymous.get(f"/found/{found_id}").headers["Location"].startswith("/login?next=")
    assert anonymous.get(f"/api/found/{found_id}").status_code == 401
    assert anonymous.get("/found/new").headers["Location"].startswith("/login?next=")
    for other in (world.owner, world.stranger):
        assert post(other, f"/found/{found_id}/close").status_code == 403
        assert api(other, "POST", f"/api/found/{found_id}/close").status_code == 403
    # tried: the close form and a new found post without their CSRF token
    assert finder.post(f"/found/{found_id}/close").status_code == 400
    assert finder.post("/found/new", data={"species": "dog"}).status_code == 400
    assert finder.post("/api/found", data={}).status_code == 400
    assert api(world.stranger, "GET", "/api/found").json == {"found": []}
    with db_of(app) as db:
        assert reports.get_found_report(db, found_id).status == "open"
