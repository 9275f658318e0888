"""The landing page and a machine-readable health check."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template

from search_party import health
from web.db import settings

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html", health=health.check(settings()))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    state = health.check(settings())
    disk = health.disk(settings())
    ok = state.ok and disk.ok
    body = {"ok": ok, "models": state.models, "problems": state.problems, "disk": disk.as_dict()}
    return jsonify(body), 200 if ok else 503
