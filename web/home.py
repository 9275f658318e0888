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
    body = {"ok": state.ok, "models": state.models, "problems": state.problems}
    return jsonify(body), 200 if state.ok else 503
