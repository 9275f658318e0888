"""Fixtures and helpers for the web tests (loaded for every test by tests/conftest.py).

Fixtures:
- ``web_settings``: a fresh data folder (SQLite, spool, queue) whose model cache is the project's
  (the ONNX export is made once per machine), the ImageNet embedder, PicoDet-S-416;
- ``app``: the real app on those settings, TESTING on, rate limits off, clips NOT queued (tests
  that need processing run the worker's task body, ``ingest.run_clip``, or a real worker);
- ``client``: an anonymous test client;  ``signed_in(email)``: a client signed in through
  /login as a new account (made with its password through search_party.users);
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
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from search_party import cameras, ingest, jobs, storage, users
from search_party.config import Settings
from search_party.db import open_db
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
VIDEOS = ROOT / "tests" / "fixtures" / "videos"
DOG_CLIP = VIDEOS / "dog_puppy_indoor_4s_480p.mp4"  # a real dachshund puppy, 4 s
PEOPLE_CLIP = VIDEOS / "vtest_pedestrians_15s.mp4"  # real CCTV, people only, no animal
PASSWORD = "a long enough passphrase"
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def make_web_settings(data_dir: Path) -> Settings:
    """Settings for a data folder that shares the project's exported ONNX graphs."""
    from sighting_drafts import embedder

    embedder()  # exports the ImageNet embedder into data/models if this machine has not yet
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (data_dir / "models").exists():
        (data_dir / "models").symlink_to(ROOT / "data" / "models", target_is_directory=True)
    settings = Settings(data_dir=data_dir, detector="picodet_s_416", embedder="imagenet")
    settings.prepare_dirs()
    return settings


def app_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {"SETTINGS": settings, "TESTING": True, "RATELIMIT_ENABLED": False, "ENQUEUE_CLIPS": False,
            "PUBLIC_URL": "http://search-party.test", **overrides}



@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    return make_web_settings(tmp_path / "data")


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
            users.create_user(db, email, PASSWORD)
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
        user_id = users.find_account(db, email).id
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
    clip = ingest.run_clip(settings, clip_id, jobs.new_claim())
    assert clip is not None, f"clip {clip_id} was not queued"
    return clip


def upload_via_api(client: FlaskClient, camera_id: int, path: Path, **headers: str) -> TestResponse:
    with path.open("rb") as fh:
        return api(client, "POST", f"/api/cameras/{camera_id}/clips",
                   data={"clip": (fh, path.name)}, content_type="multipart/form-data", headers=headers)
