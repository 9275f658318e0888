"""The landing page and a machine-readable health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from search_party import health

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html", health=health.check())


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    state = health.check()
    body = {"ok": state.ok, "models": state.models, "problems": state.problems}
    return jsonify(body), 200 if state.ok else 503
