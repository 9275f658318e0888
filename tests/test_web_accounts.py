"""Everyone's pages on the real app and a real SQLite file: sign up, sign in, sign out, reset a
password by e-mail (a real SMTP server on 127.0.0.1), delete the account; CSRF,
rate limits, cookies, headers, configuration errors."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from servers import smtp_server
from sighting_drafts import SHIPPED_EMBEDDER
from web_helpers import PASSWORD, add_opted_in_camera, app_config, csrf_token, db_of, post, sign_in

from search_party.community import accounts, cameras
from search_party.config import load_settings
from search_party.errors import UserError
from web import create_app
from web.config import web_config

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"


def test_sign_up_sign_out_and_sign_in(client, app):
    page = client.get("/signup")
    assert page.status_code == 200 and b'autocomplete="new-password"' in page.data
    made = post(client, "/signup", {"email": "new@example.org", "display_name": "Sam",
                                    "password": PASSWORD, "confirm": PASSWORD})
    assert made.status_code == 302 and made.headers["Location"] == "/cameras"
    assert client.get("/cameras").status_code == 200
    with db_of(app) as db:
        assert accounts.find_account(db, "new@example.org").display_name == "Sam"

    out = post(client, "/logout")
    assert out.status_code == 302
    assert client.get("/cameras").headers["Location"].startswith("/login?next=")

    wrong = sign_in(client, "new@example.org", "not the password at all")
    assert wrong.status_code == 400 and b"do not match an account" in wrong.data
    unknown = sign_in(client, "nobody@example.org", PASSWORD)  # same answer: no account probing
    assert unknown.status_code == 400 and b"do not match an account" in unknown.data
    assert sign_in(client, "new@example.org").status_code == 302


def test_sign_up_refusals_say_what_to_fix(client, signed_in):
    short = post(client, "/signup", {"email": "a@example.org", "password": "short", "confirm": "short"})
    assert short.status_code == 400 and b"Use at least 10 characters" in short.data
    differ = post(client, "/signup", {"email": "a@example.org", "password": PASSWORD, "confirm": PASSWORD + "x"})
    assert differ.status_code == 400 and b"The passwords differ" in differ.data
    bad_email = post(client, "/signup", {"email": "not-an-email", "password": PASSWORD, "confirm": PASSWORD})
    assert bad_email.status_code == 400 and b"is not an email address" in bad_email.data
    signed_in("taken@example.org")
    taken = post(client, "/signup", {"email": "TAKEN@example.org", "password": PASSWORD, "confirm": PASSWORD})
    assert taken.status_code == 400 and b"already exists" in taken.data


def test_next_only_redirects_within_the_site(client, signed_in):
    signed_in("walker@example.org")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        token = csrf_token(client)
        response = client.post(f"/login?next={target}", data={
            "csrf_token": token, "email": "walker@example.org", "password": PASSWORD})
        assert response.status_code == 302 and response.headers["Location"] == "/cameras", target
        post(client, "/logout")
    token = csrf_token(client)
    response = client.post("/login?next=/activity", data={
        "csrf_token": token, "email": "walker@example.org", "password": PASSWORD})
    assert response.headers["Location"] == "/activity"


def test_forms_without_csrf_token_are_refused(client, app, neighbour):
    """Tried: sign-up, sign-in, sign-out and opt-out posted without the token (and with a forged
    one); each is refused with a 400 that says to reload, and nothing changes."""
    no_token = client.post("/signup", data={"email": "x@example.org", "password": PASSWORD, "confirm": PASSWORD})
    assert no_token.status_code == 400 and b"did not come from this site" in no_token.data
    forged = client.post("/login", data={"csrf_token": "forged", "email": "x@example.org", "password": PASSWORD})
    assert forged.status_code == 400
    with db_of(app) as db:
        assert accounts.find_account(db, "x@example.org") is None
    assert neighbour.client.post("/logout").status_code == 400
    assert neighbour.client.get("/cameras").status_code == 200  # still signed in
    opt_out = neighbour.client.post(f"/cameras/{neighbour.camera_id}/opt-out")
    assert opt_out.status_code == 400
    with db_of(app) as db:
        assert cameras.owned_camera(db, neighbour.camera_id, neighbour.user_id).opted_in


def test_password_reset_by_email(settings):
    """The link goes out through a real SMTP server; the log never holds it."""
    with smtp_server() as server:
        app = create_app(app_config(settings.model_copy(update=server.settings())))
        client = app.test_client()
        with db_of(app) as db:
            accounts.create_user(db, "forgetful@example.org", PASSWORD)
        sent = post(client, "/reset", {"email": "forgetful@example.org"})
        unknown = post(client, "/reset", {"email": "stranger@example.org"})
    assert sent.status_code == unknown.status_code == 302  # the same answer either way
    assert [m["To"] for m in server.messages] == ["forgetful@example.org"]
    link = re.search(r"http://search-party\.test(/reset/\S+)", server.messages[0].get_payload()).group(1)

    new_password = "another long passphrase"
    assert client.get(link).status_code == 200
    done = post(client, link, {"password": new_password, "confirm": new_password})
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert sign_in(client, "forgetful@example.org").status_code == 400  # the old one no longer works
    assert sign_in(client, "forgetful@example.org", new_password).status_code == 302
    post(client, "/logout")
    again = post(client, link, {"password": "yet another passphrase", "confirm": "yet another passphrase"})
    assert again.status_code == 400 and b"invalid or has expired" in again.data  # one use only


def test_without_smtp_no_reset_link_is_made_or_written_to_the_log(client, app, signed_in, caplog):
    """Tried: a reset asked for on a server without SMTP (mail would go to the log)."""
    signed_in("forgetful@example.org")
    with caplog.at_level(logging.DEBUG):
        sent = post(client, "/reset", {"email": "forgetful@example.org"})
    assert sent.status_code == 302
    assert "/reset/" not in caplog.text and "no SMTP server is configured" in caplog.text
    with db_of(app) as db:
        assert db.table("password_resets").count == 0  # no token exists to be found anywhere


def test_delete_account_deletes_its_data(app, signed_in):
    client = signed_in("leaving@example.org")
    _, camera_id = add_opted_in_camera(app, "leaving@example.org")
    wrong = post(client, "/account/delete", {"password": "not my password!", "understood": "y"})
    assert wrong.status_code == 400 and b"nothing was deleted" in wrong.data
    unticked = post(client, "/account/delete", {"password": PASSWORD})
    assert unticked.status_code == 400 and b"Tick the box" in unticked.data
    gone = post(client, "/account/delete", {"password": PASSWORD, "understood": "y"})
    assert gone.status_code == 302
    assert b"1 camera(s)" in client.get("/").data
    with db_of(app) as db:
        assert accounts.find_account(db, "leaving@example.org") is None
        assert camera_id not in [c.id for c in cameras.list_cameras(db)]
    assert client.get("/cameras").status_code == 302  # signed out


def test_sign_in_is_rate_limited(settings):
    """Tried: 11 wrong passwords from one address within a minute; the 11th is refused with 429,
    a Retry-After header and a page that says to wait, even with the right password."""
    app = create_app(app_config(settings, RATELIMIT_ENABLED=True))
    client = app.test_client()
    with db_of(app) as db:
        accounts.create_user(db, "target@example.org", PASSWORD)
    for _ in range(10):
        assert sign_in(client, "target@example.org", "wrong password guess").status_code == 400
    limited = sign_in(client, "target@example.org")
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers
    assert b"Wait a few minutes" in limited.data


def test_cookies_and_security_headers(app, client, settings, monkeypatch):
    page = client.get("/login")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    cookie = page.headers["Set-Cookie"]  # the session holds the form's CSRF token
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    monkeypatch.setenv("SEARCH_PARTY_SECURE_COOKIES", "1")
    monkeypatch.setenv("SEARCH_PARTY_TILE_URL", "https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    secure = create_app(app_config(load_settings(data_dir=settings.data_dir, embedder=SHIPPED_EMBEDDER))).test_client()
    response = secure.get("/login")
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "img-src 'self' data: blob: https://*.tiles.example.org;" in response.headers["Content-Security-Policy"]


def test_templates_hold_no_inline_script_or_style():
    """The CSP forbids inline script and style: every template must do without."""
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline <script> in {template}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {template}"
        assert not re.search(r"<style|\sstyle\s*=", text), f"inline style in {template}"


def test_configuration_errors_name_the_variable(settings, monkeypatch):
    """Tried: no secret key outside a local run, a short key, a bad upload limit, a tile URL without
    placeholders, a non-http public URL."""
    monkeypatch.delenv("SEARCH_PARTY_SECRET_KEY", raising=False)
    with pytest.raises(UserError, match="SEARCH_PARTY_SECRET_KEY is not set"):
        web_config(settings)
    tried = {"SEARCH_PARTY_SECRET_KEY": ("short", "too short"),
             "SEARCH_PARTY_MAX_UPLOAD_MB": ("lots", "SEARCH_PARTY_MAX_UPLOAD_MB"),
             "SEARCH_PARTY_TILE_URL": ("https://tiles.example.org/", r"\{z\}"),
             "SEARCH_PARTY_PUBLIC_URL": ("javascript:alert(1)", "SEARCH_PARTY_PUBLIC_URL")}
    for name, (value, message) in tried.items():
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(UserError, match=message):
                load_settings()
    monkeypatch.setenv("SEARCH_PARTY_SECRET_KEY", "k" * 64)
    assert web_config(load_settings(data_dir=settings.data_dir))["SECRET_KEY"] == "k" * 64
    first = web_config(settings, dev=True)["SECRET_KEY"]
    assert web_config(settings, dev=True)["SECRET_KEY"] == first  # kept across restarts
    assert (settings.data_dir / "secret_key").stat().st_mode & 0o077 == 0  # owner-only file


def test_error_pages_say_what_to_do(client):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and b"Go back to your cameras or the home page" in missing.data
    api_missing = client.get("/api/no-such-thing")
    assert api_missing.status_code == 404 and api_missing.json["advice"]
