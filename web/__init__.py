"""The Flask app: a thin layer over search_party (no SQL and no model code here).

Shape (Flask's tutorial pattern): ``create_app`` reads the configuration (web/config.py), binds
the extensions (web/extensions.py: CSRF, sign-in, rate limits), the request's database
(web/db.py), the error pages (web/errors.py), then one blueprint per area:

    home       /, /healthz
    accounts   /signup, /login, /logout, /reset, /account          (blueprint "auth")
    neighbour  /cameras, /clips, /requests, /activity               (camera owners)
    media      /media/...  images, each checked against the viewer
    api        /api/...    JSON for the same actions; session (+ X-CSRFToken) or upload token
    owner      /reports    lost-pet wizard, search page (map, timeline), renew, found; /api/reports
    found      /found      found pets, matched against lost reports; /api/found
    relay      /messages, /contact/...   the contact relay and the inbox; /api/messages
    flyer      /reports/<id>/flyer       printable flyer
    shelter    /shelter    shelter sign-up, dashboard, bulk intakes; /api/shelter
    admin      /admin      shelter approval; /api/admin
    internal   /internal/v1/...  remote ingest workers only (worker token)

A new area is a module with ``bp = Blueprint(...)`` added to BLUEPRINTS below, templates under
web/templates/<area>/ extending base.html, and scripts as static files (the CSP forbids inline
script).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from search_party.config import load_settings

# Module names under web/ whose ``bp`` is registered, in order.  Areas built later append here.
BLUEPRINTS = ["home", "accounts", "neighbour", "media", "api",
              "owner", "found", "relay", "flyer", "shelter", "admin", "internal"]


def _content_security_policy(tile_url: str | None) -> str:
    img = "'self' data: blob:"
    if tile_url:
        parts = urlsplit(tile_url)
        img += f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"  # {s}: tile subdomains
    return ("default-src 'self'; "
            f"img-src {img}; script-src 'self'; style-src 'self'; font-src 'self'; connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'")


def create_app(overrides: dict[str, Any] | None = None, *, dev: bool = False) -> Flask:
    """The app.  ``overrides`` replace any Flask setting (``serve`` passes SETTINGS; tests also
    TESTING); ``dev`` marks a local run, which may make its own secret key (see web/config.py)."""
    from search_party.health import Monitor
    from web import db, errors, home
    from web.config import web_config
    from web.extensions import csrf, limiter, login_manager

    overrides = dict(overrides or {})
    app = Flask(__name__)
    settings = overrides.get("SETTINGS") or load_settings()
    settings.prepare_dirs()
    app.config.from_mapping(web_config(settings, testing=bool(overrides.get("TESTING")),
                                       dev=dev or bool(overrides.get("DEV"))))
    app.config.update(overrides)

    if settings.behind_proxy:
        # The client's address, scheme and host as the configured number of proxies saw them:
        # rate limits then count each client, not the proxy, and HTTPS is known to be HTTPS.
        # Headers from any further hop (a client's own X-Forwarded-For) are ignored.
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.extensions[home.EXTENSION] = Monitor(settings)  # checked on first use or by `serve` at start
    db.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to open that page."
    login_manager.login_message_category = "info"
    errors.register(app)

    for name in BLUEPRINTS:
        app.register_blueprint(import_module(f"web.{name}").bp)

    csp = _content_security_policy(app.config["TILE_URL"])

    @app.context_processor
    def page_settings() -> dict[str, Any]:
        return {"tile_url": app.config["TILE_URL"], "tile_attribution": app.config["TILE_ATTRIBUTION"]}

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(), microphone=(), payment=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if app.config["HSTS"]:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if response.mimetype == "text/html" or response.mimetype == "application/json":
            # Pages show private data (a camera's place, a consent request): never cached.
            headers.setdefault("Cache-Control", "no-store")
        return response

    return app
