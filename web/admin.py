"""Admins approve shelters: a shelter account sees lost reports and posts intakes only after an
admin has checked it is a real shelter.  Admin accounts are made from the shell
(`search-party user add EMAIL --role admin --password`).  JSON under /api/admin."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for

from search_party.community import accounts
from search_party.community.accounts import Shelter
from web.access import current_user_id, role_required
from web.db import get_db
from web.jsonio import json_time
from web.owner import refuse_upload_tokens

bp = Blueprint("admin", __name__)


def shelter_json(shelter: Shelter) -> dict[str, Any]:
    return {"user_id": shelter.user_id, "name": shelter.name, "lat": shelter.location.lat,
            "lon": shelter.location.lon, "service_radius_m": shelter.service_radius_m,
            "approved": shelter.approved, "approved_at": json_time(shelter.approved_at),
            "created": json_time(shelter.created)}


@bp.before_request
def no_tokens() -> Any:
    return refuse_upload_tokens()


@bp.get("/admin/shelters")
@role_required("admin")
def shelters() -> Any:
    db = get_db()
    every = accounts.list_shelters(db)
    emails = {s.user_id: accounts.get_account(db, s.user_id).email for s in every}
    return render_template("admin/shelters.html", pending=[s for s in every if not s.approved],
                           approved=[s for s in every if s.approved], emails=emails)


@bp.post("/admin/shelters/<int:user_id>/approve")
@role_required("admin")
def approve(user_id: int) -> Any:
    shelter = accounts.approve_shelter(get_db(), user_id, current_user_id())
    flash(f"{shelter.name} is approved: it now sees lost reports in its area and can post intakes.", "ok")
    return redirect(url_for("admin.shelters"))


@bp.get("/api/admin/shelters")
@role_required("admin")
def api_shelters() -> Any:
    return jsonify(shelters=[shelter_json(s) for s in accounts.list_shelters(get_db())])


@bp.post("/api/admin/shelters/<int:user_id>/approve")
@role_required("admin")
def api_approve(user_id: int) -> Any:
    return jsonify(shelter_json(accounts.approve_shelter(get_db(), user_id, current_user_id())))
