"""The Flask app: a thin layer over search_party (no SQL and no model code here)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    # The secret comes from configuration; without one, each start makes a fresh random key
    # (sessions then do not survive a restart, which is safe for a first local run).
    app.config.from_mapping(SECRET_KEY=os.environ.get("SEARCH_PARTY_SECRET_KEY") or secrets.token_hex(32))
    if test_config:
        app.config.update(test_config)

    from web import home

    app.register_blueprint(home.bp)

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
            "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app
