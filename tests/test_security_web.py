"""The web app under hostile input (issue 6, "Security"): the real app, real SQLite, the real
models; hypothesis draws what a fuzzer would send.  Every answer must be a clear 4xx or a
success, never a 5xx, and a refused request must store nothing.

Covered here: CSRF on every state-changing route, security headers on every page and error,
open redirects through ``next``, fuzzed camera coordinates and report-wizard fields (NaN, inf,
out of range, unicode digits, control characters, huge values), hostile photos (text, empty,
truncated, pixel bombs, SVG and HTML posing as images, polyglots), hostile clip uploads (path
traversal and odd file names, wrong types and content types, malformed and oversized
multipart), and that debug is off and a crash shows no traceback.  Cookie flags, password policy,
sign-in rate limits and configured secrets are in tests/test_web_accounts.py.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import struct
import zlib
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from domain_world import settings_for
from flask import Flask
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from owner_world import OWNER_PHOTO, client_for
from PIL import Image
from web_helpers import DOG_CLIP, api, app_config, db_of

from search_party.community import accounts, camera_tokens, cameras
from search_party.ingest import clip_task, jobs
from search_party.store.db import utcnow
from web import create_app

HOST = "search-party.test"
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Flask:
    """One app for the module (hypothesis runs many examples against it)."""
    return create_app(app_config(settings_for(tmp_path_factory.mktemp("web") / "data")))


@pytest.fixture(scope="module")
def member(app):
    """A signed-in resident with an opted-in camera and an upload token for it."""
    with db_of(app) as db:
        user = accounts.create_user(db, "member@example.org", None)
        camera = cameras.register_camera(db, user.id, lat=51.5007, lon=-0.1246, name="porch")
        cameras.opt_in(db, camera.id, user.id)
        _, token = camera_tokens.create_token(db, camera.id, user.id, "fuzz")
    client = client_for(app, user.id)
    client.environ_base["HTTP_HOST"] = HOST
    return client, camera.id, token


def counts(app) -> dict[str, int]:
    with closing(sqlite3.connect(app.config["SETTINGS"].db_path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND name NOT LIKE 'sqlite_%'")]
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- CSRF, headers, redirects


def _example_path(rule) -> str:
    """The rule's path with 1 for every variable part."""
    return re.sub(r"<(?:\w+:)?\w+>", "1", rule.rule)


def test_every_state_changing_route_refuses_a_request_without_its_csrf_token(app, member):
    """Tried: every POST and DELETE route of the app, from a signed-in session, with no token."""
    client, _, _ = member
    before = counts(app)
    routes = [(rule, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in sorted(rule.methods & {"POST", "DELETE", "PUT", "PATCH"})]
    assert len(routes) > 40
    for rule, method in routes:
        response = client.open(_example_path(rule), method=method, data={"agree": "yes"})
        assert response.status_code == 400, (method, rule.rule, response.status_code)
        assert "did not come from this site" in response.get_data(as_text=True) or \
            "CSRF" in response.get_data(as_text=True), rule.rule
    assert counts(app) == before


def test_every_page_and_every_error_carries_the_security_headers(app, member):
    """Tried: every GET route (ids that exist and ids that do not) signed in and anonymous."""
    signed_in, _, _ = member
    anonymous = app.test_client()
    paths = {_example_path(r) for r in app.url_map.iter_rules() if "GET" in r.methods and r.endpoint != "static"}
    paths |= {p.replace("/1", "/999999") for p in paths} | {"/no/such/page", "/static/../../etc/passwd"}
    for client in (signed_in, anonymous):
        for path in sorted(paths):
            response = client.get(path)
            assert response.status_code < 500, (path, response.status_code)
            headers = response.headers
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
            assert "unsafe-inline" not in headers["Content-Security-Policy"], path
            assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY", path
            if response.mimetype in ("text/html", "application/json"):
                assert headers["Cache-Control"] == "no-store", path


def _browser_target(location: str) -> str:
    """Where a browser goes for a Location header: C0 controls and spaces trimmed, tabs and
    newlines removed, backslashes read as slashes (WHATWG URL parsing for http)."""
    text = location.strip("".join(map(chr, range(0x21))))
    text = "".join(c for c in text if c not in "\t\n\r").replace("\\", "/")
    return urljoin(f"http://{HOST}/login", text)


@FUZZ
@given(st.one_of(
    st.text(alphabet="/\\.:@%?#\t\n\r \x00evil.comhtps", max_size=24),
    st.sampled_from(["//evil.com", "/\\evil.com", "\\\\evil.com", "http://evil.com", "https:evil.com",
                     "javascript:alert(1)", "/\t/evil.com", "/%2F/evil.com", "%2F%2Fevil.com",
                     "/.//evil.com", " //evil.com", "///evil.com", "/\x00/evil.com", "data:text/html,x",
                         "/\r", "/\r\nSet-Cookie: a=b"])))
def test_next_never_leads_off_the_site(app, member, target):
    client, _, _ = member
    response = client.get("/login", query_string={"next": target})
    assert response.status_code in (302, 303), response.status_code
    location = response.headers["Location"]
    assert urlsplit(_browser_target(location)).netloc == HOST, (target, location)


# ---------------------------------------------------------------- fuzzed fields

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**30, max_value=10**30),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "1_0", "0x10", "٥١٫٥", "５１.５", "51,5", "", " ", "51.5.1",
                     "--1", "1e-400", "91", "-181", "180", "90.0000001"]),
    st.text(max_size=40), st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
ODD_TEXT = st.one_of(st.text(max_size=200), st.sampled_from(
    ["\u202egnp.exe", "\x00", "A" * 10_000, "<script>alert(1)</script>", "{{7*7}}", "' OR 1=1 --",
     "\ud7ff\ue000\uffff", "🐕" * 500, "e\u0301" * 100, "\r\n\r\nSet-Cookie: x=y"]))


@FUZZ
@given(lat=NUMBERS, lon=NUMBERS, name=ODD_TEXT, retention=NUMBERS)
def test_fuzzed_camera_fields_get_a_4xx_or_a_valid_camera(app, member, lat, lon, name, retention):
    client, _, _ = member
    before = counts(app)["cameras"]
    body = {"lat": lat, "lon": lon, "name": name, "retention_days": retention}
    response = api(client, "POST", "/api/cameras", data=json.dumps(body), content_type="application/json")
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert counts(app)["cameras"] == before
        assert response.get_json()["error"]
        return
    made = response.get_json()
    assert -90 <= made["lat"] <= 90 and -180 <= made["lon"] <= 180 and made["opted_in"] is False


AN_HOUR_AGO = (utcnow() - timedelta(hours=1)).isoformat()
FIELD = NUMBERS.map(lambda v: "" if v is None else str(v))
WIZARD_FIELDS = st.fixed_dictionaries({
    "lat": st.just("51.5007") | FIELD, "lon": st.just("-0.1246") | FIELD, "radius_m": st.just("800") | FIELD,
    "pet_name": ODD_TEXT, "species": st.sampled_from(["dog", "cat", "DOG", "horse", "", "dog\x00"]),
    "last_seen": st.sampled_from(["", "yesterday", "2025-13-45T99:99", "1900-01-01T00:00:00+00:00",
                                  "9999-12-31T23:59:59+14:00", "2026-01-01T00:00:00", "now", "nan"])
                 | st.just(AN_HOUR_AGO),
    "days": st.sampled_from(["3", "0", "-1", "365", "1e9", "x", ""]),
    "description": ODD_TEXT, "open_to": st.sampled_from(["anyone", "matched", "everyone", ""])})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=WIZARD_FIELDS)
@example(fields={"lat": "51.5007", "lon": "-0.1246", "radius_m": "5000", "pet_name": "Rex \u202e\x00",
                 "species": "DOG", "last_seen": AN_HOUR_AGO, "days": "3",
                 "description": "<script>alert(1)</script>", "open_to": "anyone"})
def test_fuzzed_report_wizard_fields_get_a_4xx_or_a_valid_report(app, member, fields):
    client, _, _ = member
    before = counts(app)
    response = api(client, "POST", "/api/reports", data={**fields, "photos": (OWNER_PHOTO.open("rb"), "dog.jpg")},
                   content_type="multipart/form-data")
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        after = counts(app)
        assert {t: after[t] for t in ("lost_reports", "report_photos", "query_vectors")} == \
            {t: before[t] for t in ("lost_reports", "report_photos", "query_vectors")}
        return
    report = response.get_json()["report"]
    assert report["radius_m"] <= 5_000


# ---------------------------------------------------------------- hostile photos


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + \
        chunk(b"IEND", b"")


def _dog_jpeg() -> bytes:
    return OWNER_PHOTO.read_bytes()


PAYLOAD = b"<script>alert('polyglot')</script>"
HOSTILE_PHOTOS = {
    "a text file named .jpg": (b"just some text, not a photo\n", "dog.jpg", "image/jpeg"),
    "an empty file": (b"", "dog.jpg", "image/jpeg"),
    "a JPEG cut in half": (_dog_jpeg()[: len(_dog_jpeg()) // 2], "dog.jpg", "image/jpeg"),
    "a PNG claiming 60000x60000 pixels": (_png_claiming(60_000, 60_000), "bomb.png", "image/png"),
    "a PNG claiming 1x10^9 pixels": (_png_claiming(1, 1_000_000_000), "tall.png", "image/png"),
    "an SVG with a script": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                             "dog.svg", "image/svg+xml"),
    "an HTML page named .jpg": (b"<!doctype html><html><script>alert(1)</script></html>", "dog.jpg", "image/jpeg"),
    "a video as a photo": (DOG_CLIP.read_bytes(), "dog.jpg", "image/jpeg"),
}


@pytest.mark.parametrize("what", sorted(HOSTILE_PHOTOS))
def test_hostile_photos_are_refused_with_a_clear_4xx_and_nothing_is_stored(app, member, what):
    """Tried: each file of HOSTILE_PHOTOS in the instant photo check and in the report wizard."""
    client, _, _ = member
    data, name, mime = HOSTILE_PHOTOS[what]
    before = counts(app)
    checked = api(client, "POST", "/api/photos/check", data={"photo": (io.BytesIO(data), name, mime)},
                  content_type="multipart/form-data")
    report = api(client, "POST", "/api/reports", content_type="multipart/form-data", data={
        "photos": (io.BytesIO(data), name, mime), "pet_name": "Rex", "species": "dog", "lat": "51.5",
        "lon": "-0.12", "last_seen": (utcnow() - timedelta(hours=1)).isoformat()})
    for response in (checked, report):
        assert 400 <= response.status_code < 500, (what, response.status_code)
        assert len(response.get_json()["error"]) > 20  # a sentence, not a code
    assert counts(app) == before


def test_a_polyglot_photo_is_stored_only_as_re_encoded_pixels(app):
    """Tried: a real dog photo with a script and a ZIP appended (a valid JPEG to any decoder);
    it is accepted, and neither the payload nor the original bytes are kept or served."""
    owner = client_for(app, _new_user(app, "polyglot@example.org"))
    polyglot = _dog_jpeg() + PAYLOAD + b"PK\x05\x06" + b"\x00" * 18
    response = api(owner, "POST", "/api/reports", content_type="multipart/form-data", data={
        "photos": (io.BytesIO(polyglot), "dog.jpg", "image/jpeg"), "pet_name": "Poly", "species": "dog",
        "lat": "51.5", "lon": "-0.12", "last_seen": (utcnow() - timedelta(hours=1)).isoformat()})
    assert response.status_code == 201, response.get_data(as_text=True)
    with db_of(app) as db:
        images = [r[0] for r in db.execute("SELECT image FROM report_photos")]
    assert images and not any(PAYLOAD in i or b"PK\x05\x06" in i for i in images)
    photo_id = response.get_json()["report"]["photos"][0].rsplit("/", 1)[-1].split(".")[0]
    served = owner.get(f"/media/photos/{photo_id}.jpg")
    assert served.status_code == 200 and served.mimetype == "image/jpeg" and PAYLOAD not in served.data
    assert Image.open(io.BytesIO(served.data)).format == "JPEG"


def _new_user(app, email: str) -> int:
    with db_of(app) as db:
        return accounts.create_user(db, email, None).id


# ---------------------------------------------------------------- hostile clip uploads

FILE_NAMES = st.one_of(st.text(max_size=80), st.sampled_from([
    "../../../../etc/passwd.mp4", "..\\..\\windows\\win.ini.mp4", "/etc/shadow.mp4", "clip.mp4\x00.jpg",
    "....//....//clip.mp4", "%2e%2e%2fclip.mp4", "con.mp4", ".mp4", " .mp4", "a" * 300 + ".mp4",
    "\u202eclip4pm.exe", "clip.MP4", "clip.mp4.exe", "clip", "clip.jpg", "~/.ssh/authorized_keys.mp4"]))


@FUZZ
@given(name=FILE_NAMES, mime=st.sampled_from(["video/mp4", "text/html", "application/octet-stream", "",
                                             "image/jpeg", "multipart/form-data"]),
       content=st.sampled_from(["real clip", "text", "empty", "jpeg"]))
def test_fuzzed_clip_uploads_get_a_4xx_or_land_only_in_the_spool(app, member, name, mime, content):
    _, camera_id, token = member
    data_dir = app.config["SETTINGS"].data_dir
    body = {"real clip": DOG_CLIP.read_bytes() + name.encode("utf-8", "replace"), "text": b"not a video",
            "empty": b"", "jpeg": _dog_jpeg()}[content]
    before_files, before = files_under(data_dir), counts(app)["clips"]
    response = app.test_client().post(
        f"/api/cameras/{camera_id}/clips", headers={"Authorization": f"Bearer {token}"},
        data={"clip": (io.BytesIO(body), name, mime)}, content_type="multipart/form-data")
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, response.get_data(as_text=True)
    new_files = files_under(data_dir) - before_files
    if response.status_code >= 400:
        assert counts(app)["clips"] == before and not new_files
        return
    spool = app.config["SETTINGS"].spool_dir.resolve()
    assert all(spool in f.resolve().parents for f in new_files), new_files  # nothing escapes the spool
    for clip in response.get_json()["clips"]:
        assert "/" not in clip["filename"] and "\\" not in clip["filename"] and ".." not in clip["filename"]


@pytest.mark.parametrize("what", ["text", "jpeg"])
def test_an_accepted_upload_that_is_no_video_fails_with_a_reason_and_is_deleted(app, member, what):
    """Tried: a text file and a JPEG sent as clips named .mp4 (the upload only checks the name; the
    worker decodes): the worker marks each failed, says why, and deletes the file."""
    _, camera_id, token = member
    body = {"text": b"not a video at all", "jpeg": _dog_jpeg() + b"#" + what.encode()}[what]
    response = app.test_client().post(
        f"/api/cameras/{camera_id}/clips", headers={"Authorization": f"Bearer {token}"},
        data={"clip": (io.BytesIO(body), f"fake-{what}.mp4", "video/mp4")}, content_type="multipart/form-data")
    assert response.status_code in (200, 201)
    clip_id = response.get_json()["clips"][0]["id"]
    done = clip_task.run_clip(app.config["SETTINGS"], clip_id, jobs.new_claim())
    assert done.status == "failed" and "not" in done.reason and len(done.reason) > 20
    assert not any(f.name == f"fake-{what}.mp4" for f in files_under(app.config["SETTINGS"].spool_dir))


def _raw_multipart(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


MALFORMED = {
    "a multipart type with no boundary": ("multipart/form-data", _raw_multipart("abc", [("clip", "a.mp4", b"x")])),
    "a body whose boundary differs from the header's": (
        "multipart/form-data; boundary=one", _raw_multipart("two", [("clip", "a.mp4", b"x")])),
    "a multipart body cut off mid-part": (
        "multipart/form-data; boundary=abc", _raw_multipart("abc", [("clip", "a.mp4", b"x" * 1000)])[:80]),
    "JSON where a multipart upload belongs": ("application/json", b'{"clip": "a.mp4"}'),
    "a form-urlencoded body": ("application/x-www-form-urlencoded", b"clip=a.mp4"),
    "no content type": ("", b"\x00\x01\x02"),
    "2000 tiny parts": ("multipart/form-data; boundary=abc",
                        _raw_multipart("abc", [(f"f{n}", None, b"x") for n in range(2000)])),
    "a 2 MB text field": ("multipart/form-data; boundary=abc",
                          _raw_multipart("abc", [("start", None, b"9" * 2_000_000), ("clip", "a.mp4", b"x")])),
    "a field name of 100 kB": ("multipart/form-data; boundary=abc",
                               _raw_multipart("abc", [("c" * 100_000, "a.mp4", b"x")])),
}


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_malformed_multipart_gets_a_4xx_and_stores_nothing(app, member, what):
    """Tried: each body of MALFORMED sent to the clip upload, with a valid upload token."""
    _, camera_id, token = member
    content_type, body = MALFORMED[what]
    data_dir = app.config["SETTINGS"].data_dir
    before_files, before = files_under(data_dir), counts(app)
    response = app.test_client().post(f"/api/cameras/{camera_id}/clips", data=body,
                                      headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    assert 400 <= response.status_code < 500, (what, response.status_code)
    assert counts(app) == before and files_under(data_dir) == before_files


# ---------------------------------------------------------------- debug and crashes


def test_debug_is_off_and_a_crash_shows_no_traceback(tmp_path, monkeypatch):
    """Tried: an app made as `search-party serve` makes it, and a view that raises."""
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("SEARCH_PARTY_SECRET_KEY", "k" * 40)
    app = create_app({"SETTINGS": settings_for(tmp_path / "data")})
    assert app.debug is False and app.testing is False

    @app.get("/boom")
    def boom():  # a bug somewhere in a view
        raise RuntimeError("secret internals /etc/passwd")

    response = app.test_client().get("/boom")
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Traceback" not in text and "secret internals" not in text and "RuntimeError" not in text
