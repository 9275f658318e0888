"""Shelters on the real app: sign-up, waiting for an admin, approval (admins only), the dashboard
of active lost reports in the service area, bulk intakes (each photo accepted or refused on its
own) and the matches between intakes and lost reports; roles and CSRF enforced."""

from __future__ import annotations

import pytest
from domain_world import user_id
from owner_world import (
    OTHER_DOG_PHOTO,
    PERSON_PHOTO,
    SHELTER_PHOTO,
    account,
    build_owner_world,
    client_for,
    local_minutes_ago,
)
from web_helpers import api, csrf_token, db_of, post

from search_party.community import accounts


@pytest.fixture
def world(app):
    return build_owner_world(app, share=False)


def _shelter(app, email="desk@dogs-home.example", lat="51.51", lon="-0.13", km="10"):
    """A shelter signed up through the page (a real password: its sign-up hashes one)."""
    client = app.test_client()
    made = post(client, "/shelter/signup", {"name": "Battersea Test Home", "email": email,
                                            "password": "a long enough passphrase",
                                            "confirm": "a long enough passphrase", "lat": lat, "lon": lon,
                                            "service_km": km})
    assert made.status_code == 302 and made.headers["Location"] == "/shelter", made.get_data(as_text=True)
    with db_of(app) as db:
        return client, user_id(db, email)


def _admin(app):
    return account(app, "admin@example.org", role="admin")


def _intakes(client, *photos, api_call=False):
    files = [(p.open("rb"), p.name) for p in photos]
    try:
        if api_call:
            return api(client, "POST", "/api/shelter/intakes", content_type="multipart/form-data",
                       data={"photos": files, "species": "dog"})
        return post(client, "/shelter/intakes", {"photos": files, "species": "dog",
                                                 "found_at": local_minutes_ago(10), "utc_offset": "0"},
                    content_type="multipart/form-data")
    finally:
        for fh, _ in files:
            fh.close()


def test_a_shelter_waits_for_an_admin_then_sees_lost_reports_and_posts_intakes(world, app):
    shelter, shelter_id = _shelter(app)
    waiting = shelter.get("/shelter")
    assert waiting.status_code == 200 and b"waiting for an admin" in waiting.data
    assert shelter.get("/shelter/intakes").status_code == 403
    assert api(shelter, "GET", "/api/shelter/lost-reports").status_code == 403
    assert api(shelter, "GET", "/api/shelter").json["approved"] is False

    admin = _admin(app)
    listed = admin.get("/admin/shelters").get_data(as_text=True)
    assert "Battersea Test Home" in listed and "desk@dogs-home.example" in listed
    assert post(admin, f"/admin/shelters/{shelter_id}/approve").status_code == 302
    assert api(admin, "GET", "/api/admin/shelters").json["shelters"][0]["approved"] is True

    board = shelter.get("/shelter").get_data(as_text=True)
    assert "Rex" in board and f"/contact/lost/{world.report_id}" in board and "km away" in board
    (lost,) = api(shelter, "GET", "/api/shelter/lost-reports").json["lost_reports"]
    assert lost["pet_name"] == "Rex" and lost["distance_m"] % 100 == 0 and "lat" not in lost
    assert shelter.get(lost["photos"][0]).status_code == 200  # a shelter in the area sees the photo

    # One bulk post: the lost dog (another sequence), another dog, and a photo with no animal.
    results = _intakes(shelter, SHELTER_PHOTO, OTHER_DOG_PHOTO, PERSON_PHOTO)
    page = " ".join(results.get_data(as_text=True).split())
    assert results.status_code == 200
    assert "train__182_c5s2_8.jpg: posted, <strong>looks like 1 lost pet</strong>" in page
    assert "train__96_c1s3_4.jpg: posted </li>" in page
    assert "astronaut.png: no dog found in this photo" in page
    (match,) = api(shelter, "GET", "/api/shelter/matches").json["matches"]
    assert match["pet_name"] == "Rex" and match["lost_report_id"] == world.report_id
    assert "Rex" in shelter.get("/shelter").get_data(as_text=True)
    owner_page = world.owner.get(f"/reports/{world.report_id}").get_data(as_text=True)
    assert "Found by a shelter" in owner_page

    by_api = _intakes(shelter, OTHER_DOG_PHOTO, api_call=True)  # the same photo again, now
    assert by_api.status_code == 201 and by_api.json["intakes"][0]["accepted"] is True


def test_roles_are_enforced(world, app):
    shelter, shelter_id = _shelter(app)
    for client in (world.owner, world.neighbour, shelter):  # residents and the shelter itself
        assert client.get("/admin/shelters").status_code == 403
        assert api(client, "GET", "/api/admin/shelters").status_code == 403
        assert post(client, f"/admin/shelters/{shelter_id}/approve").status_code == 403
        assert api(client, "POST", f"/api/admin/shelters/{shelter_id}/approve").status_code == 403
    for client in (world.owner, world.stranger, _admin(app)):  # anyone but a shelter
        assert client.get("/shelter").status_code == 403
        assert client.get("/shelter/intakes").status_code == 403
        for url in ("/api/shelter", "/api/shelter/lost-reports", "/api/shelter/matches"):
            assert api(client, "GET", url).status_code == 403, url
        assert api(client, "POST", "/api/shelter/intakes", data={}).status_code == 403
        assert post(client, "/shelter/intakes", {"species": "dog"}).status_code == 403
    anonymous = app.test_client()
    assert anonymous.get("/shelter").headers["Location"].startswith("/login?next=")
    assert anonymous.get("/admin/shelters").headers["Location"].startswith("/login?next=")
    assert anonymous.get("/api/shelter/lost-reports").status_code == 401
    assert anonymous.get("/api/admin/shelters").status_code == 401
    with db_of(app) as db:
        assert not accounts.get_shelter(db, shelter_id).approved
    assert world.stranger.get("/shelter/signup").headers["Location"] == "/shelter"  # already signed in


def test_shelter_forms_need_the_csrf_token(world, app):
    """Tried: shelter sign-up, approval and a bulk intake without their CSRF tokens."""
    client = app.test_client()
    refused = client.post("/shelter/signup", data={"name": "X", "email": "x@example.org"})
    assert refused.status_code == 400 and b"did not come from this site" in refused.data
    shelter, shelter_id = _shelter(app)
    admin = _admin(app)
    assert admin.post(f"/admin/shelters/{shelter_id}/approve").status_code == 400
    assert admin.post(f"/api/admin/shelters/{shelter_id}/approve").status_code == 400
    with db_of(app) as db:
        assert not accounts.get_shelter(db, shelter_id).approved
        accounts.approve_shelter(db, shelter_id, user_id(db, "admin@example.org"))
    csrf_token(shelter)
    assert shelter.post("/shelter/intakes", data={"species": "dog"}).status_code == 400
    assert client_for(app, shelter_id).post("/api/shelter/intakes", data={}).status_code == 400


def test_a_shelter_sign_up_says_what_to_fix(app):
    client = app.test_client()
    far = post(client, "/shelter/signup", {"name": "Far Home", "email": "far@example.org",
                                           "password": "a long enough passphrase",
                                           "confirm": "a long enough passphrase", "lat": "51.5", "lon": "-0.1",
                                           "service_km": "500"})  # tried: a 500 km service area
    assert far.status_code == 400 and b"at most 100 km" in far.data
