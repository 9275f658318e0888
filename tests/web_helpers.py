"""Helpers for the web tests (their fixtures, ``app``, ``client``, ``signed_in`` and
``neighbour``, are in tests/conftest.py).

 ``csrf_token(client)`` reads the page's token; ``post(client, url, data)`` and
``api(client, method, url, json=...)`` send it (form field or X-CSRFToken header).  Every POST a
test sends carries the token unless the test is about a missing token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain_world import user_id
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from search_party import vision
from search_party.community import cameras
from search_party.config import Settings
from search_party.ingest import clip_task, jobs
from search_party.store import storage
from search_party.store.db import open_db

ROOT = Path(__file__).resolve().parent.parent
VIDEOS = ROOT / "tests" / "fixtures" / "videos"
DOG_CLIP = VIDEOS / "dog_puppy_indoor_4s_480p.mp4"  # a real dachshund puppy, 4 s
PEOPLE_CLIP = VIDEOS / "vtest_pedestrians_15s.mp4"  # real CCTV, people only, no animal
PASSWORD = "a long enough passphrase"
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def app_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {"SETTINGS": settings, "TESTING": True, "RATELIMIT_ENABLED": False, "ENQUEUE_CLIPS": False,
            "PUBLIC_URL": "http://search-party.test", **overrides}


def json_of(response: TestResponse) -> Any:
    """The JSON body of a response that must have one."""
    assert response.json is not None, response.get_data(as_text=True)
    return response.json


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


@dataclass
class Neighbour:
    client: FlaskClient
    user_id: int
    camera_id: int


def add_opted_in_camera(app: Flask, email: str, name: str = "porch", lat: float = 51.5007,
                        lon: float = -0.1246) -> tuple[int, int]:
    """(user id, camera id) of a new opted-in camera owned by the account ``email``."""
    with db_of(app) as db:
        owner_id = user_id(db, email)
        camera = cameras.register_camera(db, owner_id, lat=lat, lon=lon, name=name)
        cameras.opt_in(db, camera.id, owner_id)
    return owner_id, camera.id


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
    neighbour_id, camera_id = add_opted_in_camera(app, "neighbour@example.org", name="porch")
    _, other_camera_id = add_opted_in_camera(app, "other.neighbour@example.org", name="gate", lon=-0.1250)
    uploaded = upload_via_api(neighbour, camera_id, DOG_CLIP)
    assert uploaded.status_code == 201, uploaded.json
    clip = process_clip_now(settings, json_of(uploaded)["clips"][0]["id"])
    assert clip.status == "done" and clip.sightings_count, clip
    models = vision.load_models(settings)
    with db_of(app) as db:
        sighting_id = storage.list_sightings(db, clip_id=clip.id)[0].id
        token, _ = camera_tokens.create_token(db, camera_id, neighbour_id, "nvr")
        owner_id = user_id(db, "pet.owner@example.org")
        report, _ = reports.create_lost_report(
            db, owner_id, pet_name="Max", species="dog", photos=[ROOT / "tests/fixtures/images/zamba_dog_porch.jpg"],
            lat=51.5010, lon=-0.1240, last_seen=utcnow() - timedelta(hours=2),
            models=models)
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
