"""The landing page and a machine-readable health check, both answered from the health kept in
memory (search_party.health.Monitor): an anonymous visitor never makes the server hash its
model files, and never sees a path."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template

from search_party.health import Health, Monitor

bp = Blueprint("home", __name__)
EXTENSION = "search_party_health"  # the app's Monitor, made by create_app; `serve` refreshes it at start


def current_health() -> Health:
    monitor: Monitor = current_app.extensions[EXTENSION]
    return monitor.current()


@bp.get("/")
def index() -> str:
    return render_template("index.html", health=current_health())


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    state = current_health()
    return jsonify(state.public()), 200 if state.ok else 503
