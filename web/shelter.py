"""Shelters: sign up (a shelter account waits for an admin's approval, web/admin.py), then a
dashboard of the active lost reports in the shelter's service area, bulk posting of intakes (one
found report per photo, at the shelter's place) and the matches between its intakes and lost
reports, with the relay to write to the owners.  JSON under /api/shelter.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    MultipleFileField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from search_party.community import accounts, consent, reports
from search_party.community.accounts import Shelter
from search_party.community.report_submission import IntakeResult, submit_intakes
from search_party.community.reports import MAX_DESCRIPTION, LostReport
from search_party.errors import UserError
from search_party.search.coarse_location import coarse_area, public_distance_m
from search_party.store.db import utcnow
from web.access import SignedInUser, current_user_id, role_required
from web.db import get_db, settings
from web.extensions import REPORT_LIMIT, SIGN_UP_LIMIT, limiter, user_or_address
from web.forms import EMAIL, NEW_PASSWORD
from web.jsonio import json_time
from web.owner import SPECIES_CHOICES, local_time, photo_urls, read_photos, refuse_upload_tokens, report_time

bp = Blueprint("shelter", __name__)

MAX_INTAKE_PHOTOS = 50  # one bulk post; each photo is one animal


class ShelterSignUpForm(FlaskForm):
    name = StringField("The shelter's name (shown to pet owners)", validators=[DataRequired("Enter the name."),
                                                                               Length(max=120)])
    email = EmailField("E-mail", validators=EMAIL)
    password = PasswordField("Password (at least 10 characters)", validators=NEW_PASSWORD)
    confirm = PasswordField("Password again", validators=[EqualTo("password", "The passwords differ.")])
    lat = StringField("Latitude of the shelter", validators=[Length(max=40)])
    lon = StringField("Longitude of the shelter", validators=[Length(max=40)])
    service_km = StringField("Area you serve: radius in km", default="20", validators=[Length(max=8)])


class IntakeForm(FlaskForm):
    photos = MultipleFileField(f"Photos, one per animal (up to {MAX_INTAKE_PHOTOS})")
    species = SelectField("They are", choices=SPECIES_CHOICES, default="dog")
    found_at = StringField("Taken in on", validators=[Length(max=40)])
    utc_offset = HiddenField()
    description = TextAreaField("Notes for every one of them (optional)",
                                validators=[Optional(), Length(max=MAX_DESCRIPTION)])


def _km(value: str | None) -> float:
    try:
        return float(str(value or "").strip()) * 1000
    except ValueError:
        raise UserError(f"the service radius {value!r} is not a number of km") from None


def lost_for_shelter_json(report: LostReport, shelter: Shelter) -> dict[str, Any]:
    """An active lost report as a shelter sees it: photos, name, time, and how far away in round
    figures (the owner's exact pin stays theirs)."""
    area = coarse_area(report.last_seen_point.lat, report.last_seen_point.lon)
    return {"id": report.id, "pet_name": report.pet_name, "species": report.species,
            "description": report.description, "last_seen": json_time(report.last_seen),
            "distance_m": public_distance_m(shelter.location, area), "photos": photo_urls(report.photo_ids),
            "contact": url_for("relay.contact_lost", report_id=report.id)}


def _intake_matches(db: Any, shelter_id: int) -> list[tuple[reports.FoundReport, list[consent.FoundMatch]]]:
    intakes = [r for r in reports.list_found_reports(db, reporter_id=shelter_id) if r.source == "shelter"]
    return [(r, consent.found_matches(db, shelter_id, found_report_id=r.id)) for r in reversed(intakes)]


@bp.before_request
def no_tokens() -> Any:
    return refuse_upload_tokens()


@bp.route("/shelter/signup", methods=["GET", "POST"])
@limiter.limit(SIGN_UP_LIMIT, methods=["POST"])
def signup() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("shelter.dashboard"))
    form = ShelterSignUpForm()
    error = None
    if form.validate_on_submit():
        db = get_db()
        try:
            made = accounts.register_shelter(db, form.email.data, form.password.data, name=form.name.data,
                                          lat=form.lat.data, lon=form.lon.data,
                                          service_radius_m=_km(form.service_km.data))
        except UserError as exc:
            error = str(exc)
        else:
            session.clear()
            login_user(SignedInUser(accounts.get_account(db, made.user_id)))
            flash("Your shelter account is made. An admin checks it before it can see lost reports.", "ok")
            return redirect(url_for("shelter.dashboard"))
    status = 400 if request.method == "POST" else 200
    return render_template("shelter/signup.html", form=form, error=error), status


@bp.get("/shelter")
@role_required("shelter")
def dashboard() -> Any:
    db = get_db()
    uid = current_user_id()
    shelter = accounts.get_shelter(db, uid)
    if not shelter.approved:
        return render_template("shelter/waiting.html", shelter=shelter)
    lost = reports.shelter_dashboard(db, uid)
    intake_matches = _intake_matches(db, uid)
    return render_template(
        "shelter/dashboard.html", shelter=shelter,
        lost=[(r, public_distance_m(shelter.location, coarse_area(r.last_seen_point.lat, r.last_seen_point.lon)))
              for r in lost],
        intakes=intake_matches,
        lost_of={m.lost_report_id: reports.get_lost_report(db, m.lost_report_id)
                 for _, matches in intake_matches for m in matches})


def _intake_photos() -> list[tuple[str, bytes]]:
    files = [f for f in request.files.getlist("photos") if f and f.filename]
    if len(files) > MAX_INTAKE_PHOTOS:
        raise UserError(f"{len(files)} photos chosen; post at most {MAX_INTAKE_PHOTOS} at a time")
    return [(f.filename or "photo", read_photos([f])[0]) for f in files]


@bp.route("/shelter/intakes", methods=["GET", "POST"])
@role_required("shelter")
@limiter.limit(REPORT_LIMIT, key_func=user_or_address, methods=["POST"])
def intakes() -> Any:
    uid = current_user_id()
    shelter = accounts.approved_shelter(get_db(), uid)
    form = IntakeForm()
    if request.method == "GET":
        form.found_at.data = f"{utcnow():%Y-%m-%dT%H:%M}"
    error, results = None, None
    if form.validate_on_submit():
        try:
            results = submit_intakes(
                settings(), get_db(), uid, _intake_photos(), species=form.species.data,
                found_at=local_time(form.found_at.data, form.utc_offset.data, "the intake time"),
                description=form.description.data or "")
        except UserError as exc:
            error = str(exc)
    elif request.method == "POST":
        error = "This form has expired; reload the page and send it again."
    status = 400 if error else 200
    return render_template("shelter/intakes.html", shelter=shelter, form=form, error=error,
                           results=results, matched=_matched(results)), status


def _matched(results: list[IntakeResult] | None) -> dict[int, int]:
    """How many lost reports each new intake matched."""
    if not results:
        return {}
    db = get_db()
    return {r.report.id: len(consent.found_matches(db, current_user_id(), found_report_id=r.report.id))
            for r in results if r.report is not None}


# ---------------------------------------------------------------- JSON API


@bp.get("/api/shelter")
@role_required("shelter")
def api_shelter() -> Any:
    shelter = accounts.get_shelter(get_db(), current_user_id())
    return jsonify(name=shelter.name, approved=shelter.approved, lat=shelter.location.lat,
                   lon=shelter.location.lon, service_radius_m=shelter.service_radius_m)


@bp.get("/api/shelter/lost-reports")
@role_required("shelter")
def api_lost_reports() -> Any:
    db = get_db()
    uid = current_user_id()
    lost = reports.shelter_dashboard(db, uid)
    shelter = accounts.get_shelter(db, uid)
    return jsonify(lost_reports=[lost_for_shelter_json(r, shelter) for r in lost])


@bp.post("/api/shelter/intakes")
@role_required("shelter")
@limiter.limit(REPORT_LIMIT, key_func=user_or_address)
def api_intakes() -> Any:
    """Multipart: one photo per animal in ``photos``; fields species, found_at (ISO 8601 with
    offset), description.  Each photo is accepted (with its matches) or refused (with why)."""
    results = submit_intakes(settings(), get_db(), current_user_id(), _intake_photos(),
                             species=request.form.get("species", "dog"),
                             found_at=(report_time(request.form["found_at"], "found_at")
                                       if request.form.get("found_at") else utcnow()),
                             description=request.form.get("description", ""))
    matched = _matched(results)
    return jsonify(intakes=[{"file": r.filename, "accepted": r.report is not None,
                             "found_report_id": r.report.id if r.report else None,
                             "matches": matched.get(r.report.id, 0) if r.report else 0,
                             "error": r.error} for r in results]), 201


@bp.get("/api/shelter/matches")
@role_required("shelter")
def api_matches() -> Any:
    db = get_db()
    out = []
    for intake, matches in _intake_matches(db, current_user_id()):
        for m in matches:
            lost = reports.get_lost_report(db, m.lost_report_id)
            out.append({"found_report_id": intake.id, "lost_report_id": lost.id, "pet_name": lost.pet_name,
                        "score": round(m.score, 3), "lost_photos": photo_urls(m.photo_ids),
                        "contact": url_for("relay.contact_lost", report_id=lost.id)})
    return jsonify(matches=out)
