"""Found a dog: anyone signed in posts a found pet with photos, the place and the time.  It is
matched at once against active lost reports nearby; both sides are told in their inboxes and may
write to each other through the contact relay (web/relay.py).  The finder's page lists the lost
reports that match.  JSON under /api/found.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, MultipleFileField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from search_party.community import consent, reports
from search_party.community.report_submission import submit_found
from search_party.community.reports import MAX_DESCRIPTION, MAX_PHOTOS, FoundReport
from search_party.errors import ImageError, UserError
from search_party.search.coarse_location import coarse_area
from web.access import current_user_id, login_required
from web.db import get_db, settings
from web.extensions import REPORT_LIMIT, limiter, user_or_address
from web.forms import ConfirmForm
from web.jsonio import json_time
from web.owner import (
    SPECIES_CHOICES,
    area_json,
    form_kept,
    local_time,
    photo_urls,
    read_photos,
    refuse_upload_tokens,
    report_time,
    time_zone_field,
)

bp = Blueprint("found", __name__)


class FoundReportForm(FlaskForm):
    photos = MultipleFileField(f"Photos of the animal (1 to {MAX_PHOTOS})")
    species = SelectField("It is a", choices=SPECIES_CHOICES, default="dog")
    lat = StringField("Latitude", validators=[Length(max=40)])
    lon = StringField("Longitude", validators=[Length(max=40)])
    found_at = StringField("When did you find it? (your local time)", validators=[Length(max=40)])
    utc_offset = HiddenField()
    time_zone = time_zone_field()
    description = TextAreaField("Anything that helps: collar, tag, where it is now (optional)",
                                validators=[Optional(), Length(max=MAX_DESCRIPTION)])
    submission_key = HiddenField()


def _owned(report_id: int) -> tuple[FoundReport, list[consent.FoundMatch]]:
    """The reporter's found report and its matches (``found_matches`` refuses anyone else)."""
    db = get_db()
    matches = consent.found_matches(db, current_user_id(), found_report_id=report_id)
    return reports.get_found_report(db, report_id), matches


def found_json(report: FoundReport) -> dict[str, Any]:
    """A found report as its reporter sees it."""
    return {"id": report.id, "species": report.species, "description": report.description,
            "source": report.source, "lat": report.place.lat, "lon": report.place.lon,
            "found_at": json_time(report.found_at), "status": report.status,
            "expires": json_time(report.expires), "photos": photo_urls(report.photo_ids),
            "page": url_for("found.found_report", report_id=report.id)}


def lost_match_json(m: consent.FoundMatch) -> dict[str, Any]:
    """A lost report that may be the found animal, as the finder sees it: its photos and a
    contact link, never the owner or the exact last-seen place."""
    lost = reports.get_lost_report(get_db(), m.lost_report_id)
    return {"match_id": m.match_id, "lost_report_id": m.lost_report_id, "pet_name": lost.pet_name,
            "species": lost.species, "status": lost.status, "score": round(m.score, 3),
            "last_seen": json_time(lost.last_seen),
            "last_seen_area": area_json(coarse_area(lost.last_seen_point.lat, lost.last_seen_point.lon)),
            "photos": photo_urls(m.photo_ids),
            "contact": url_for("relay.contact_lost", report_id=m.lost_report_id)}


@bp.before_request
def no_tokens() -> Any:
    return refuse_upload_tokens()


@bp.get("/found")
@login_required
def found_list() -> Any:
    return redirect(url_for("owner.reports_page"))


@bp.route("/found/new", methods=["GET", "POST"])
@login_required
@limiter.limit(REPORT_LIMIT, key_func=user_or_address, methods=["POST"])
def new_found() -> Any:
    form = FoundReportForm()
    if request.method == "GET":
        form.submission_key.data = uuid.uuid4().hex
        form.time_zone.data = settings().time_zone
    error = None
    if form.validate_on_submit():
        try:
            report, _ = submit_found(
                settings(), get_db(), current_user_id(),
                photos=read_photos(request.files.getlist(form.photos.name)), species=form.species.data,
                lat=form.lat.data, lon=form.lon.data,
                found_at=local_time(form.found_at.data, form.utc_offset.data, "the time you found it",
                                    form.time_zone.data),
                description=form.description.data or "", submission_key=form.submission_key.data or None)
        except (UserError, ImageError) as exc:
            error = form_kept(exc)
        else:
            flash("Thank you. Owners of lost pets that look like it are told at once, and can write "
                  "to you here; your address is never shown.", "ok")
            return redirect(url_for("found.found_report", report_id=report.id))
    elif request.method == "POST":
        error = "Check the fields marked below."
    status = 400 if request.method == "POST" else 200
    return render_template("found/new_found.html", form=form, error=error, max_photos=MAX_PHOTOS), status


@bp.get("/found/<int:report_id>")
@login_required
def found_report(report_id: int) -> Any:
    report, matches = _owned(report_id)
    lost = {m.lost_report_id: reports.get_lost_report(get_db(), m.lost_report_id) for m in matches}
    return render_template("found/found_report.html", report=report, matches=matches, lost=lost,
                           close_form=ConfirmForm())


@bp.post("/found/<int:report_id>/close")
@login_required
def close(report_id: int) -> Any:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("This form has expired; reload the page and try again.", "problem")
    else:
        reports.close_found_report(get_db(), report_id, current_user_id())
        flash("Closed: it is no longer matched with new lost reports. Thank you for helping.", "ok")
    return redirect(url_for("found.found_report", report_id=report_id))


# ---------------------------------------------------------------- JSON API


@bp.get("/api/found")
@login_required
def api_found_list() -> Any:
    found = reports.list_found_reports(get_db(), reporter_id=current_user_id())
    return jsonify(found=[found_json(r) for r in found])


@bp.post("/api/found")
@login_required
@limiter.limit(REPORT_LIMIT, key_func=user_or_address)
def api_create_found() -> Any:
    """Multipart: photos in ``photos``; fields species, lat, lon, found_at (ISO 8601 with offset),
    description, submission_key.  201 with the report and the lost reports it matches."""
    form = request.form
    report, created = submit_found(
        settings(), get_db(), current_user_id(), photos=read_photos(request.files.getlist("photos")),
        species=form.get("species", "dog"), lat=form.get("lat"), lon=form.get("lon"),
        found_at=report_time(form.get("found_at"), "found_at"), description=form.get("description", ""),
        submission_key=form.get("submission_key") or None)
    matches = consent.found_matches(get_db(), current_user_id(), found_report_id=report.id)
    return jsonify(report=found_json(report), created=created,
                   matches=[lost_match_json(m) for m in matches]), 201 if created else 200


@bp.get("/api/found/<int:report_id>")
@login_required
def api_found(report_id: int) -> Any:
    report, matches = _owned(report_id)
    return jsonify(report=found_json(report), matches=[lost_match_json(m) for m in matches])


@bp.post("/api/found/<int:report_id>/close")
@login_required
def api_close(report_id: int) -> Any:
    return jsonify(found_json(reports.close_found_report(get_db(), report_id, current_user_id())))
