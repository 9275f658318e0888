"""The landing page and a machine-readable health check, both answered from the health kept in
memory (search_party.health.Monitor): an anonymous visitor never makes the server hash its
model files, and never sees a path.  Room on the disk is read afresh (one statvfs)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template

from search_party import health
from search_party.health import Health, Monitor
from web.db import settings

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
    disk = health.disk(settings())  # fresh: a disk fills faster than the models' re-check comes
    body = {**state.public(), "ok": state.ok and disk.ok, "disk": disk.as_dict()}
    return jsonify(body), 200 if body["ok"] else 503
