"""The pet owner's pages and API on the real app, real models and a real SQLite file: the report
wizard (its photo check, refusals that say what to fix), the search page (counts, map data and
timeline with coarse areas only), renewal, the contact preference, the flyer, marking found and
deleting; an ownership matrix over every owner route; CSRF on every form."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from domain_world import user_id
from owner_world import (
    CAMERA,
    LAST_SEEN,
    OWNER_PHOTO,
    PERSON_PHOTO,
    account,
    build_owner_world,
    camera_sighting,
    client_for,
    local_minutes_ago,
    report_id_of,
    report_lost,
)
from web_helpers import api, db_of, post

from search_party.community import accounts, cameras, consent, contact_preferences, reports
from search_party.community.search_status import cameras_in_range
from search_party.search.coarse_location import area_of_cell, coarse_cell
from search_party.search.geofence import Point, destination_point
from search_party.store.db import open_db, utcnow

PAGES = ["/reports/{id}", "/reports/{id}/flyer", "/reports/{id}/found", "/reports/{id}/delete"]
API_READS = ["/api/reports/{id}", "/api/reports/{id}/sightings", "/api/reports/{id}/found-matches"]
FORM_POSTS = ["/reports/{id}/renew", "/reports/{id}/contact", "/reports/{id}/found", "/reports/{id}/delete"]
API_WRITES = [("POST", "/api/reports/{id}/renew"), ("POST", "/api/reports/{id}/contact"),
              ("POST", "/api/reports/{id}/found"), ("DELETE", "/api/reports/{id}")]


def _numbers(value):
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, float) else []


@pytest.fixture
def world(app):
    return build_owner_world(app)


def test_photo_check_answers_at_once(app):
    client = account(app, "owner@example.org")

    def check(path, species="dog"):
        with path.open("rb") as fh:
            return api(client, "POST", "/api/photos/check", data={"photo": (fh, path.name), "species": species},
                       content_type="multipart/form-data")

    dog = check(OWNER_PHOTO)
    assert dog.status_code == 200 and dog.json["found"] is True
    assert dog.json["message"] == "dog found in this photo" and len(dog.json["box"]) == 4
    person = check(PERSON_PHOTO)  # tried: a photo of a person, no animal
    assert person.status_code == 200 and person.json["found"] is False
    assert person.json["message"].startswith("no dog found in this photo — try another")
    cat = check(OWNER_PHOTO, species="cat")  # tried: the dog photo checked as a cat
    assert cat.json["found"] is False and "it seems to show a dog" in cat.json["message"]
    not_image = api(client, "POST", "/api/photos/check", content_type="multipart/form-data",
                    data={"photo": (io.BytesIO(Path(__file__).read_bytes()), "notes.txt")})  # tried: a text file
    assert not_image.status_code == 400 and not_image.json["error"]
    none = api(client, "POST", "/api/photos/check", content_type="multipart/form-data", data={})
    assert none.status_code == 400 and "send one photo" in none.json["error"]
    anonymous = app.test_client().post("/api/photos/check")
    assert anonymous.status_code in (400, 401)  # no session: refused before any model runs


def test_wizard_refuses_a_photo_without_a_dog_and_stores_nothing(app):
    client = account(app, "owner@example.org")
    refused = report_lost(client, photo=PERSON_PHOTO)  # tried: only a photo of a person
    assert refused.status_code == 400
    assert "no dog found in photo 1" in refused.get_data(as_text=True)
    future = report_lost(client, last_seen=f"{utcnow().year + 1}-01-01T10:00")  # tried: a future time
    assert future.status_code == 400 and "is in the future" in future.get_data(as_text=True)
    far = report_lost(client, lat="95", lon="0")  # tried: a latitude off the globe
    assert far.status_code == 400 and "latitude" in far.get_data(as_text=True).lower()
    nameless = report_lost(client, pet_name="")
    assert nameless.status_code == 400 and "name is missing" in nameless.get_data(as_text=True)
    with db_of(app) as db:
        assert reports.list_lost_reports(db) == []


def test_the_search_page_says_what_is_happening(world, app):
    page = world.owner.get(f"/reports/{world.report_id}").get_data(as_text=True)
    assert "1 opted-in camera" in page and "1 animal sighting" in page
    assert "1 camera owner asked" in page and "1 shared" in page
    assert "Area <span class=\"area-label\">A</span>: about " in page
    assert "porch" not in page  # the camera's name is the neighbour's

    data = api(world.owner, "GET", f"/api/reports/{world.report_id}/sightings").json
    assert data["last_seen"]["lat"] == LAST_SEEN[0]  # the owner's own pin
    (seen,) = data["sightings"]
    assert seen["distance_m"] % 100 == 0 and seen["area_label"] == "A" and len(seen["area"]["boundary"]) >= 5
    assert not set(CAMERA) & set(_numbers(data))  # never the camera's place
    image = world.owner.get(seen["image"])
    assert image.status_code == 200 and image.mimetype == "image/jpeg"

    status = api(world.owner, "GET", f"/api/reports/{world.report_id}").json
    assert status["status"]["cameras_in_range"] == 1 and status["status"]["requests_sent"] == 1
    assert status["status"]["sightings_checked"] == 1 and status["open_to"] == "anyone"
    assert status["report"]["status"] == "active"


def test_renew_contact_preference_and_flyer(world, app):
    with db_of(app) as db:
        before = reports.get_lost_report(db, world.report_id).expires
    renewed = post(world.owner, f"/reports/{world.report_id}/renew", {"days": "7"})
    assert renewed.status_code == 302
    with db_of(app) as db:
        after = reports.get_lost_report(db, world.report_id).expires
    assert after > before
    bad = api(world.owner, "POST", f"/api/reports/{world.report_id}/renew", json={"days": 30})  # tried: 30 days
    assert bad.status_code == 400 and "14 days" in bad.json["error"]

    assert post(world.owner, f"/reports/{world.report_id}/contact", {"open_to": "matched"}).status_code == 302
    with db_of(app) as db:
        assert contact_preferences.open_to(db, world.report_id) == "matched"
    wrong = api(world.owner, "POST", f"/api/reports/{world.report_id}/contact", json={"open_to": "everyone"})
    assert wrong.status_code == 400 and "anyone, matched" in wrong.json["error"]

    flyer = world.owner.get(f"/reports/{world.report_id}/flyer").get_data(as_text=True)
    assert "Have you seen Rex?" in flyer and "print.css" in flyer
    assert f"http://search-party.test/contact/lost/{world.report_id}" in flyer
    assert "owner@example.org" not in flyer


def test_marking_found_ends_the_search_and_deletes_its_data(world, app):
    with db_of(app) as db:
        version = next(iter(db.execute("SELECT model_version FROM query_vectors")))[0]
        assert len(reports.query_vectors(db, world.report_id, version)) == 1
    confirm = world.owner.get(f"/reports/{world.report_id}/found")
    assert confirm.status_code == 200 and b"Yes, Rex is found" in confirm.data
    done = post(world.owner, f"/reports/{world.report_id}/found")
    assert done.status_code == 302 and done.headers["Location"] == f"/reports/{world.report_id}"
    page = world.owner.get(f"/reports/{world.report_id}").get_data(as_text=True)
    assert "Rex is found" in page and "none any more" in page and "Print a flyer" not in page
    with db_of(app) as db:
        assert len(reports.query_vectors(db, world.report_id, version)) == 0
        assert reports.get_lost_report(db, world.report_id).status == "found"
    again = api(world.owner, "POST", f"/api/reports/{world.report_id}/found", json={"delete": True})
    assert again.status_code == 200 and again.json == {"ended": False, "deleted": True}
    with db_of(app) as db:
        assert reports.list_lost_reports(db) == []
        assert consent.requests_for_owner(db, world.neighbour_id, states=("shared",)) == []


def test_api_report_is_created_once_per_submission(app):
    client = account(app, "owner@example.org")

    def send():
        with OWNER_PHOTO.open("rb") as fh:
            return api(client, "POST", "/api/reports", content_type="multipart/form-data", data={
                "photos": (fh, OWNER_PHOTO.name), "pet_name": "Rex", "lat": LAST_SEEN[0], "lon": LAST_SEEN[1],
                "last_seen": utcnow().isoformat(), "submission_key": "tap-1"})

    first, second = send(), send()  # a double tap
    assert first.status_code == 201 and first.json["created"] is True
    assert first.json["search"] == {"sightings_compared": 0, "new_matches": 0, "requests_sent": 0}
    assert second.status_code == 200 and second.json["report"]["id"] == first.json["report"]["id"]
    listed = api(client, "GET", "/api/reports").json["reports"]
    assert [r["pet_name"] for r in listed] == ["Rex"]
    naive = api(client, "POST", "/api/reports", content_type="multipart/form-data",
                data={"pet_name": "Rex", "last_seen": "2026-01-01T10:00"})  # tried: no UTC offset
    assert naive.status_code == 400 and "no UTC offset" in naive.json["error"]


def test_ownership_matrix(world, app):
    """Every owner route: the owner gets it; the neighbour who shared, a stranger and no one are
    refused; refused writes change nothing."""
    rid = world.report_id
    anonymous = app.test_client()
    for url in [u.format(id=rid) for u in PAGES]:
        assert world.owner.get(url).status_code == 200, url
        for other in (world.neighbour, world.stranger):
            assert other.get(url).status_code == 403, url
        assert anonymous.get(url).headers["Location"].startswith("/login?next="), url
    for url in [u.format(id=rid) for u in API_READS]:
        assert api(world.owner, "GET", url).status_code == 200, url
        for other in (world.neighbour, world.stranger):
            assert api(other, "GET", url).status_code == 403, url
        assert anonymous.get(url).status_code == 401, url
    for url in [u.format(id=rid) for u in FORM_POSTS]:
        for other in (world.neighbour, world.stranger):
            assert post(other, url, {"days": "3", "open_to": "matched"}).status_code == 403, url
        assert anonymous.post(url).status_code in (302, 400), url
    for method, url in [(m, u.format(id=rid)) for m, u in API_WRITES]:
        for other in (world.neighbour, world.stranger):
            assert api(other, method, url, json={"days": 3, "open_to": "matched"}).status_code == 403, url
        assert anonymous.open(url, method=method).status_code in (400, 401), url
    for url in ("/reports", "/reports/new"):
        assert anonymous.get(url).headers["Location"].startswith("/login?next="), url
    assert anonymous.get("/api/reports").status_code == 401
    assert api(world.stranger, "GET", "/api/reports").json == {"reports": []}
    assert b"Rex" not in world.stranger.get("/reports").data
    assert world.owner.get("/reports/99999").status_code == 403  # the same answer as someone else's
    with db_of(app) as db:
        report = reports.get_lost_report(db, rid)
        assert report.status == "active" and contact_preferences.open_to(db, rid) == "anyone"


def test_forms_and_api_need_the_csrf_token_and_refuse_upload_tokens(world, app):
    """Tried: each owner form and API write without its CSRF token, and with an upload token."""
    rid = world.report_id
    for url in ("/reports/new", f"/reports/{rid}/renew", f"/reports/{rid}/contact", f"/reports/{rid}/found",
                f"/reports/{rid}/delete"):
        response = world.owner.post(url, data={"days": "3", "open_to": "matched"})
        assert response.status_code == 400 and b"did not come from this site" in response.data, url
    for method, url in API_WRITES + [("POST", "/api/reports"), ("POST", "/api/photos/check")]:
        response = world.owner.open(url.format(id=rid), method=method, json={})
        assert response.status_code == 400, url
    token = api(world.neighbour, "POST", f"/api/cameras/{world.camera_id}/tokens", json={"label": "nvr"}).json
    with_token = world.owner.get(f"/api/reports/{rid}", headers={"Authorization": f"Bearer {token['secret']}"})
    assert with_token.status_code == 403 and "upload token" in with_token.json["error"]
    with db_of(app) as db:
        assert reports.get_lost_report(db, rid).status == "active"
        assert contact_preferences.open_to(db, rid) == "anyone"


def test_an_opted_out_camera_is_not_in_range_and_never_asked(app):
    owner = account(app, "owner@example.org")
    account(app, "neighbour@example.org")
    neighbour_id, camera_id = camera_sighting(app, "neighbour@example.org")
    with db_of(app) as db:
        cameras.opt_out(db, camera_id, neighbour_id, app.config["SETTINGS"].index_path)
    rid = report_id_of(report_lost(owner, last_seen=local_minutes_ago(240)))
    status = api(owner, "GET", f"/api/reports/{rid}").json["status"]
    assert status["cameras_in_range"] == 0 and status["requests_sent"] == 0
    with db_of(app) as db:
        assert consent.requests_for_owner(db, neighbour_id) == []


def test_the_demo_shows_a_newcomer_a_real_match(app, monkeypatch):
    """`search-party demo` on the app's data folder: the pet owner sees the shared sighting and the
    shelter's match, a neighbour has a request waiting, the never-opted-in camera was not asked;
    a second run changes nothing."""
    from click.testing import CliRunner

    from search_party.cli.demo import demo as demo_command
    from search_party.measure import demo

    settings = app.config["SETTINGS"]
    monkeypatch.setenv("SEARCH_PARTY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SEARCH_PARTY_EMBEDDER", settings.embedder)
    first = CliRunner().invoke(demo_command, catch_exceptions=False)
    assert "asked 2 camera owner(s)" in first.output and "alex@demo.example" in first.output
    again = CliRunner().invoke(demo_command, catch_exceptions=False)
    assert "already seeded" in again.output
    with db_of(app) as db:
        alex, kim = (user_id(db, f"{n}@demo.example") for n in ("alex", "kim"))
        (waiting,) = consent.requests_for_owner(db, kim)
        assert waiting.camera_name == "back yard"  # Kim's 'porch' camera was never opted in
        (report,) = reports.list_lost_reports(db)
    owner = client_for(app, alex)
    page = owner.get(f"/reports/{report.id}").get_data(as_text=True)
    assert "2 camera owners asked" in page and "1 shared" in page and "Found by a shelter" in page
    assert "Area <span class=\"area-label\">A</span>" in page
    # The printed password signs in for real.
    assert post(app.test_client(), "/login", {"email": "sam@demo.example", "password": demo.PASSWORD}
                ).status_code == 302


def test_cameras_in_range_counts_a_camera_by_its_cell_not_its_place(tmp_path):
    """Tried: 50 m to 1 km searches centred all over and around one cell, against a camera near
    one corner of the cell and, in a second database, near the opposite corner: every count is
    the same, so the search page's count cannot place a camera inside its cell."""
    area = area_of_cell(coarse_cell(*LAST_SEEN))
    corners = [area.boundary[0], area.boundary[3]]
    places = [Point(c.lat + 0.15 * (area.center.lat - c.lat), c.lon + 0.15 * (area.center.lon - c.lon))
              for c in corners]
    assert {coarse_cell(p.lat, p.lon) for p in places} == {area.cell}
    counts = []
    for n, place in enumerate(places):
        with open_db(tmp_path / f"{n}.db") as db:
            owner = accounts.create_user(db, "cam@example.org")
            camera = cameras.register_camera(db, owner.id, lat=place.lat, lon=place.lon)
            cameras.opt_in(db, camera.id, owner.id)
            counts.append([cameras_in_range(db, destination_point(area.center, bearing, metres), radius)
                           for bearing in range(0, 360, 30) for metres in (0, 100, 200, 300)
                           for radius in (50, 150, 250, 1000)])
    assert counts[0] == counts[1] and 0 < sum(counts[0]) < len(counts[0])


def test_a_fourth_search_in_a_day_is_refused_with_429_and_stores_nothing(app):
    # Tried: four lost reports by one account within minutes (the daily limit is 3), through the API.
    client = account(app, "busy@example.org")

    def send(key):
        with OWNER_PHOTO.open("rb") as fh:
            return api(client, "POST", "/api/reports", content_type="multipart/form-data", data={
                "photos": (fh, OWNER_PHOTO.name), "pet_name": "Rex", "lat": LAST_SEEN[0],
                "lon": LAST_SEEN[1], "last_seen": utcnow().isoformat(), "submission_key": key})

    assert [send(f"tap-{n}").status_code for n in range(3)] == [201, 201, 201]
    refused = send("tap-4")
    assert refused.status_code == 429 and "24 hours" in refused.json["error"]
    assert len(api(client, "GET", "/api/reports").json["reports"]) == 3
