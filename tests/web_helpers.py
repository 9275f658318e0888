"""Fixtures and helpers for the web tests (loaded for every test by tests/conftest.py).

Fixtures:
- ``web_settings``: a fresh data folder (SQLite, spool, queue) whose model cache is the project's
  (the ONNX export is made once per machine), the ImageNet embedder, PicoDet-S-416;
- ``app``: the real app on those settings, TESTING on, rate limits off, clips NOT queued (tests
  that need processing run the worker's task body, ``clip_task.run_clip``, or a real worker);
- ``client``: an anonymous test client;  ``signed_in(email)``: a client signed in through
  /login as a new account (made with its password through search_party.community.accounts);
- ``neighbour``: a signed-in camera owner with one opted-in camera (``Neighbour``).

Helpers: ``csrf_token(client)`` reads the page's token; ``post(client, url, data)`` and
``api(client, method, url, json=...)`` send it (form field or X-CSRFToken header).  Every POST a
test sends carries the token unless the test is about a missing token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from domain_world import settings_for
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from search_party import vision
from search_party.community import accounts, cameras
from search_party.config import Settings
from search_party.ingest import clip_task, jobs
from search_party.store import storage
from search_party.store.db import open_db
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
VIDEOS = ROOT / "tests" / "fixtures" / "videos"
DOG_CLIP = VIDEOS / "dog_puppy_indoor_4s_480p.mp4"  # a real dachshund puppy, 4 s
PEOPLE_CLIP = VIDEOS / "vtest_pedestrians_15s.mp4"  # real CCTV, people only, no animal
PASSWORD = "a long enough passphrase"
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def app_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {"SETTINGS": settings, "TESTING": True, "RATELIMIT_ENABLED": False, "ENQUEUE_CLIPS": False,
            "PUBLIC_URL": "http://search-party.test", **overrides}



@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path / "data")


@pytest.fixture
def app(web_settings: Settings) -> Flask:
    return create_app(app_config(web_settings))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def db_of(app: Flask):
    """A connection to the app's database for a test's own checks (close it, or use `with`)."""
    return open_db(app.config["SETTINGS"].db_path)


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/")
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, "the page has no csrf-token meta tag"
    return match.group(1)


def post(client: FlaskClient, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
    """A form post with the session's CSRF token."""
    return client.post(url, data={"csrf_token": csrf_token(client), **(data or {})}, **kwargs)


def api(client: FlaskClient, method: str, url: str, **kwargs: Any) -> TestResponse:
    """A JSON API call on the session, with the CSRF header for methods that change things."""
    headers = dict(kwargs.pop("headers", {}))
    if method.upper() not in ("GET", "HEAD"):
        headers.setdefault("X-CSRFToken", csrf_token(client))
    return client.open(url, method=method.upper(), headers=headers, **kwargs)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    return post(client, "/login", {"email": email, "password": password})


@pytest.fixture
def signed_in(app: Flask) -> Callable[[str], FlaskClient]:
    """``signed_in(email)``: a new account with PASSWORD, and a client signed in as it."""
    def make(email: str) -> FlaskClient:
        with db_of(app) as db:
            accounts.create_user(db, email, PASSWORD)
        client = app.test_client()
        response = sign_in(client, email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client
    return make


@dataclass
class Neighbour:
    client: FlaskClient
    user_id: int
    camera_id: int


def add_opted_in_camera(app: Flask, email: str, name: str = "porch", lat: float = 51.5007,
                        lon: float = -0.1246) -> tuple[int, int]:
    """(user id, camera id) of a new opted-in camera owned by the account ``email``."""
    with db_of(app) as db:
        user_id = accounts.find_account(db, email).id
        camera = cameras.register_camera(db, user_id, lat=lat, lon=lon, name=name)
        cameras.opt_in(db, camera.id, user_id)
    return user_id, camera.id


@pytest.fixture
def neighbour(app: Flask, signed_in: Callable[[str], FlaskClient]) -> Neighbour:
    client = signed_in("neighbour@example.org")
    user_id, camera_id = add_opted_in_camera(app, "neighbour@example.org")
    return Neighbour(client, user_id, camera_id)


def process_clip_now(settings: Settings, clip_id: int) -> storage.Clip:
    """Run the worker's task body for one queued clip here (real pipeline, real models)."""
    clip = clip_task.run_clip(settings, clip_id, jobs.new_claim())
    assert clip is not None, f"clip {clip_id} was not queued"
    return clip


def upload_via_api(client: FlaskClient, camera_id: int, path: Path, **headers: str) -> TestResponse:
    with path.open("rb") as fh:
        return api(client, "POST", f"/api/cameras/{camera_id}/clips",
                   data={"clip": (fh, path.name)}, content_type="multipart/form-data", headers=headers)


@dataclass
class ConsentWorld:
    """A neighbour whose real clip of a real dog became a sighting, a pet owner whose lost report
    (a real dog photo) is matched to it, and the neighbour asked about it; plus a second
    neighbour with a camera of their own.  Ids for every object a route may name."""

    neighbour: FlaskClient
    other: FlaskClient
    pet_owner: FlaskClient
    camera_id: int
    other_camera_id: int
    clip_id: int
    sighting_id: int
    token_id: int
    match_id: int
    lost_report_id: int
    photo_id: int


def build_consent_world(app: Flask, signed_in: Callable[[str], FlaskClient]) -> ConsentWorld:
    """The match is placed as a candidate directly (consent.record_candidates) with a stated
    score: these tests are about who may see and do what; the matcher's scoring is tested in the
    search tests.  Everything else is the real path: upload, the worker's task body, the report
    wizard's photo checks, consent.send_requests."""
    from datetime import timedelta

    from search_party.community import camera_tokens, consent, reports
    from search_party.store.db import utcnow, write_transaction

    settings = app.config["SETTINGS"]
    neighbour = signed_in("neighbour@example.org")
    other = signed_in("other.neighbour@example.org")
    pet_owner = signed_in("pet.owner@example.org")
    user_id, camera_id = add_opted_in_camera(app, "neighbour@example.org", name="porch")
    _, other_camera_id = add_opted_in_camera(app, "other.neighbour@example.org", name="gate", lon=-0.1250)
    uploaded = upload_via_api(neighbour, camera_id, DOG_CLIP)
    assert uploaded.status_code == 201, uploaded.json
    clip = process_clip_now(settings, uploaded.json["clips"][0]["id"])
    assert clip.status == "done" and clip.sightings_count, clip
    models = vision.load_models(settings)
    with db_of(app) as db:
        sighting_id = storage.list_sightings(db, clip_id=clip.id)[0].id
        token, _ = camera_tokens.create_token(db, camera_id, user_id, "nvr")
        owner_id = accounts.find_account(db, "pet.owner@example.org").id
        report, _ = reports.create_lost_report(
            db, owner_id, pet_name="Max", species="dog", photos=[ROOT / "tests/fixtures/images/zamba_dog_porch.jpg"],
            lat=51.5010, lon=-0.1240, last_seen=utcnow() - timedelta(hours=2),
            detector=models.detector, embedder=models.embedder)
        with write_transaction(db):
            consent.record_candidates(db, report.id, [([sighting_id], 0.9)], compared={camera_id: 1})
        asked = consent.send_requests(db)
    assert len(asked) == 1
    return ConsentWorld(neighbour, other, pet_owner, camera_id, other_camera_id, clip.id, sighting_id,
                        token.id, asked[0], report.id, report.photo_ids[0])


class LiveServer:
    """The app on a real HTTP server on 127.0.0.1 (werkzeug, threaded) in this process, counting
    the requests it answers; ``url`` is its address.  Use as a context manager."""

    def __init__(self, app: Flask) -> None:
        import threading

        from werkzeug.serving import make_server

        self.requests: list[tuple[str, str]] = []
        self.server = make_server("127.0.0.1", 0, self._counting(app.wsgi_app), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _counting(self, wsgi: Callable) -> Callable:
        def counted(environ: dict, start_response: Callable) -> Any:
            self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
            return wsgi(environ, start_response)
        return counted

    def posts(self, path_part: str = "/clips") -> int:
        return sum(1 for method, path in self.requests if method == "POST" and path_part in path)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
