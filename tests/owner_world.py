"""A small real world for the pet-owner, finder, shelter and relay web tests.

The lost dog is MPDD dog 182 (tests/fixtures): a neighbour's camera stored a sighting of it made
from its sequence 4 (real crops, embedded and stored as ingest stores them: tests/domain_world),
filmed an hour ago; the owner reports it lost through the real wizard route with a photo from
*another* sequence (3), so the real search matches it and asks the neighbour, who shares it.
Finders and shelters post other photos of the same dog (sequences 6 and 2: cosine 0.92 and 0.77
with the owner's photo under the shipped, trained embedder, above its 0.55 threshold) or of another
dog (096: 0.32, below it).  No score is stated by hand anywhere here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from domain_world import store_sightings, user_id
from flask import Flask
from flask.testing import FlaskClient
from sighting_drafts import T0
from web_helpers import add_opted_in_camera, api, db_of, post
from werkzeug.test import TestResponse

from search_party.community import accounts, cameras, consent
from search_party.store.db import utcnow

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MPDD = FIXTURES / "reid" / "mpdd"
LOST_DOG = "182"
CLIP_SEQUENCE = 4
OWNER_PHOTO = MPDD / "182" / "train__182_c4s3_2.jpg"  # sequence 3
FINDER_PHOTO = MPDD / "182" / "train__182_c2s6_1.jpg"  # sequence 6
SHELTER_PHOTO = MPDD / "182" / "train__182_c5s2_8.jpg"  # sequence 2
OTHER_DOG_PHOTO = MPDD / "096" / "train__96_c1s3_4.jpg"
PERSON_PHOTO = FIXTURES / "images" / "astronaut.png"  # a person, no animal
LAST_SEEN = (51.5007, -0.1246)
CAMERA = (51.5020, -0.1230)  # about 190 m from the last-seen point


def account(app: Flask, email: str, *, role: str = "resident", display_name: str = "") -> FlaskClient:
    """A client signed in as a new account.  The account has no password and the session is set
    the way Flask-Login sets it at sign-in: the real sign-in (an Argon2 hash and check, about a
    second per account) is tested in test_web_accounts, and these tests need many accounts."""
    with db_of(app) as db:
        user = accounts.create_user(db, email, None, role=role, display_name=display_name)
    return client_for(app, user.id)


def client_for(app: Flask, user_id: int) -> FlaskClient:
    from web.access import SignedInUser

    with db_of(app) as db:
        session_id = SignedInUser(accounts.get_account(db, user_id)).get_id()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = session_id
        session["_fresh"] = True
    return client


def local_minutes_ago(minutes: int) -> str:
    """A ``datetime-local`` value (UTC wall clock, as the wizard sends without a browser offset)."""
    return f"{utcnow() - timedelta(minutes=minutes):%Y-%m-%dT%H:%M}"


def report_lost(client: FlaskClient, photo: Path = OWNER_PHOTO, **fields: str) -> TestResponse:
    """The wizard's form post, as a browser without JavaScript sends it."""
    data = {"species": "dog", "lat": str(LAST_SEEN[0]), "lon": str(LAST_SEEN[1]),
            "last_seen": local_minutes_ago(180), "utc_offset": "0", "radius_m": "1000", "days": "3",
            "pet_name": "Rex", "description": "brown, red collar", "open_to": "anyone", **fields}
    with photo.open("rb") as fh:
        return post(client, "/reports/new", {**data, "photos": (fh, photo.name)},
                    content_type="multipart/form-data")


def report_id_of(response: TestResponse) -> int:
    match = re.fullmatch(r"/reports/(\d+)", response.headers.get("Location", ""))
    assert match, (response.status_code, response.get_data(as_text=True)[:2000])
    return int(match.group(1))


def post_found(client: FlaskClient, photo: Path = FINDER_PHOTO, submission_key: str = "") -> TestResponse:
    """A found dog posted through the API, 500 m from the last-seen point, half an hour ago."""
    with photo.open("rb") as fh:
        return api(client, "POST", "/api/found", content_type="multipart/form-data", data={
            "photos": (fh, photo.name), "species": "dog", "lat": "51.5030", "lon": "-0.1200",
            "found_at": (utcnow() - timedelta(minutes=30)).isoformat(), "submission_key": submission_key})


def camera_sighting(app: Flask, email: str, point: tuple[float, float] = CAMERA,
                    keys: tuple[tuple[str, int], ...] = ((LOST_DOG, CLIP_SEQUENCE),)) -> tuple[int, int]:
    """(user id, camera id): a new opted-in camera of ``email`` that filmed the fixture dogs
    ``keys`` an hour ago."""
    user_id, camera_id = add_opted_in_camera(app, email, lat=point[0], lon=point[1])
    with db_of(app) as db:
        cam = cameras.owned_camera(db, camera_id, user_id)
        store_sightings(db, cam, list(keys), shift=utcnow() - T0 - timedelta(hours=1))
    return user_id, camera_id


@dataclass
class OwnerWorld:
    owner: FlaskClient
    owner_id: int
    neighbour: FlaskClient
    neighbour_id: int
    camera_id: int
    stranger: FlaskClient
    report_id: int
    match_id: int


def build_owner_world(app: Flask, *, share: bool = True) -> OwnerWorld:
    """The owner's report found the neighbour's sighting and asked; ``share``: the neighbour said yes."""
    neighbour = account(app, "neighbour@example.org", display_name="Sam")
    owner = account(app, "owner@example.org")
    stranger = account(app, "stranger@example.org")
    neighbour_id, camera_id = camera_sighting(app, "neighbour@example.org")
    report_id = report_id_of(report_lost(owner))
    with db_of(app) as db:
        asked = consent.requests_for_owner(db, neighbour_id)
        owner_id = user_id(db, "owner@example.org")
    assert [r.lost_report_id for r in asked] == [report_id], asked
    if share:
        assert post(neighbour, f"/requests/{asked[0].match_id}/share").status_code == 302
    return OwnerWorld(owner, owner_id, neighbour, neighbour_id, camera_id, stranger, report_id,
                      asked[0].match_id)
