"""The pet owner's pages: the lost-dog report wizard (photos checked as they are chosen), the
search page (what is happening, expiry and renewal, shared sightings on a map and a timeline,
found dogs that match), the contact preference, marking the dog found, deleting the report;
and the same actions as JSON under /api/reports (session + X-CSRFToken, like web/api.py).

Shared by the other report areas (found, shelter, flyer): ``read_photos``, ``local_time``,
``report_time`` and ``refuse_upload_tokens`` (``json_time`` lives in web/jsonio.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.datastructures import FileStorage
from wtforms import (
    BooleanField,
    HiddenField,
    MultipleFileField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length, Optional

from search_party.community import consent, contact_preferences, reports, retention
from search_party.community.report_submission import submit_lost
from search_party.community.reports import MAX_DESCRIPTION, MAX_PET_NAME, MAX_PHOTOS, LostReport
from search_party.community.search_status import search_status
from search_party.errors import ImageError, UserError
from search_party.search import photo_check
from search_party.search.coarse_location import CoarseArea
from search_party.vision import load_models
from web.access import current_user_id, login_required
from web.db import get_db, settings
from web.errors import respond
from web.extensions import REPORT_LIMIT, limiter, user_or_address
from web.forms import ConfirmForm
from web.jsonio import json_body, json_time

bp = Blueprint("owner", __name__)

PHOTO_CHECK_LIMIT = "60 per minute;600 per hour"  # each check runs the detector once
MAX_PHOTO_BYTES = 25 * 1024 * 1024  # a phone's largest photos are well under this
RADIUS_CHOICES = [SelectChoice("500", "500 m"), SelectChoice("1000", "1 km (usual for a dog on foot)"),
                  SelectChoice("2000", "2 km"), SelectChoice("3000", "3 km"), SelectChoice("5000", "5 km (the most)")]
DAYS_CHOICES = [SelectChoice("1", "1 day"), SelectChoice("3", "3 days"), SelectChoice("7", "7 days"),
                SelectChoice("14", "14 days")]
SPECIES_CHOICES = [SelectChoice("dog", "Dog"), SelectChoice("cat", "Cat")]
OPEN_TO_CHOICES = [SelectChoice(value, label) for value, label in contact_preferences.OPEN_TO.items()]


# ---------------------------------------------------------------- shared with the other report areas


def refuse_upload_tokens() -> Any:
    """An upload token may only upload clips (web/api.py); on report routes it is refused rather
    than silently ignored."""
    if request.path.startswith("/api/") and "Authorization" in request.headers:
        return respond(403, "an upload token may only upload clips and read their status; sign in "
                            "for everything else")
    return None


def read_photos(files: list[FileStorage]) -> list[bytes]:
    """The bytes of the chosen photos (empty file fields skipped); the domain says whether they
    show the animal."""
    chosen = [f for f in files if f and f.filename]
    if len(chosen) > MAX_PHOTOS:
        raise UserError(f"{len(chosen)} photos chosen; choose at most {MAX_PHOTOS} where the animal is "
                        "clearly visible")
    out = []
    for f in chosen:
        data = f.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise UserError(f"{f.filename} is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB; choose a "
                            "smaller photo")
        out.append(data)
    return out


@cache
def time_zone_choices() -> list[SelectChoice]:
    """Every named time zone, for a page without JavaScript (the browser cannot say its own)."""
    return [SelectChoice(z, z.replace("_", " ")) for z in sorted(available_timezones())
            if "/" in z and not z.startswith(("Etc/", "SystemV/"))] + [SelectChoice("UTC", "UTC")]


def form_kept(exc: Exception) -> str:
    """The refusal of a report form that comes back filled in: a browser never keeps chosen files."""
    message = str(exc).rstrip()
    return message + ("" if message.endswith((".", "!", "?")) else ".") + \
        " Your other answers are kept: choose the photos again."


def time_zone_field() -> SelectField:
    """Shown only without JavaScript (templates put it in <noscript>); with it, the page's script
    sends the browser's own UTC offset instead."""
    return SelectField("Time zone of that time", choices=time_zone_choices, validate_choice=False)


def local_time(value: str | None, utc_offset_minutes: str | None, what: str,
               time_zone: str | None = None) -> datetime:
    """A ``datetime-local`` form value (the visitor's wall clock) as an aware time: the page's
    script sends the browser's UTC offset; without JavaScript the visitor's chosen time zone
    (``time_zone``), or else the neighbourhood's (SEARCH_PARTY_TIME_ZONE), says which clock."""
    text = (value or "").strip()
    if not text:
        raise UserError(f"{what} is missing: give a date and a time")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what} {text!r} is not a date and time such as 2025-06-01T08:30") from None
    if moment.tzinfo is not None:
        return moment
    try:
        minutes = int(utc_offset_minutes or "")
    except ValueError:
        minutes = None
    if minutes is not None and -14 * 60 <= minutes <= 14 * 60:
        return moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    zone = (time_zone or "").strip() or settings().time_zone
    try:
        return moment.replace(tzinfo=ZoneInfo(zone))
    except (ValueError, KeyError, OSError):
        raise UserError(f"{zone!r} is not a time zone; choose one from the list") from None


def report_time(value: object, what: str) -> datetime:
    """An API time: ISO 8601 with a UTC offset."""
    try:
        moment = datetime.fromisoformat(str(value or "").strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{what} {value!r} is not an ISO 8601 time such as 2025-06-01T08:30:00+02:00") from None
    if moment.tzinfo is None:
        raise UserError(f"{what} {value!r} has no UTC offset; add one, e.g. +02:00 or Z")
    return moment


def _whole(value: object, what: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError:
        raise UserError(f"{what} {value!r} is not a whole number") from None


def photo_urls(photo_ids: tuple[int, ...]) -> list[str]:
    return [url_for("media.photo", photo_id=p) for p in photo_ids]


# ---------------------------------------------------------------- forms


class LostReportForm(FlaskForm):
    photos = MultipleFileField(f"Photos of your pet (1 to {MAX_PHOTOS}, where it is clearly visible)")
    species = SelectField("Your pet is a", choices=SPECIES_CHOICES, default="dog")
    lat = StringField("Latitude", validators=[Length(max=40)])
    lon = StringField("Longitude", validators=[Length(max=40)])
    last_seen = StringField("When was it last seen? (your local time)", validators=[Length(max=40)])
    utc_offset = HiddenField()
    time_zone = time_zone_field()
    radius_m = SelectField("Search cameras within", choices=RADIUS_CHOICES, default="1000")
    days = SelectField("Keep searching for", choices=DAYS_CHOICES, default="3")
    pet_name = StringField("Your pet's name", validators=[Length(max=MAX_PET_NAME)])
    description = TextAreaField("What it looks like, collar, anything that helps (optional)",
                                validators=[Optional(), Length(max=MAX_DESCRIPTION)])
    open_to = RadioField("Who may write to you (through Search Party; nobody sees your e-mail or number)",
                         choices=OPEN_TO_CHOICES, default=contact_preferences.DEFAULT)
    submission_key = HiddenField()


class RenewForm(FlaskForm):
    days = SelectField("Keep searching for", choices=DAYS_CHOICES, default="3")


class ContactForm(FlaskForm):
    open_to = RadioField("Who may write to you", choices=OPEN_TO_CHOICES)


class FoundForm(FlaskForm):
    delete_all = BooleanField("Also delete the report now, with its photos, shared sightings and messages")


# ---------------------------------------------------------------- what the pages and the API show


def area_labels(areas: list[CoarseArea]) -> dict[str, str]:
    """A letter per distinct coarse area, in order of first appearance (map and timeline agree)."""
    labels: dict[str, str] = {}
    for area in areas:
        if area.cell not in labels:
            n = len(labels)
            labels[area.cell] = chr(ord("A") + n) if n < 26 else f"A{n}"
    return labels


def report_json(report: LostReport) -> dict[str, Any]:
    """A lost report as its owner sees it (the last-seen point is theirs)."""
    return {"id": report.id, "pet_name": report.pet_name, "species": report.species,
            "description": report.description, "status": report.status,
            "last_seen": json_time(report.last_seen), "lat": report.last_seen_point.lat,
            "lon": report.last_seen_point.lon, "radius_m": report.radius_m,
            "expires": json_time(report.expires), "created": json_time(report.created),
            "ended": json_time(report.ended), "photos": photo_urls(report.photo_ids),
            "page": url_for("owner.report", report_id=report.id)}


def area_json(area: CoarseArea) -> dict[str, Any]:
    return {"cell": area.cell, "center": [area.center.lat, area.center.lon],
            "boundary": [[p.lat, p.lon] for p in area.boundary]}


def _sightings_json(report_id: int) -> dict[str, Any]:
    db = get_db()
    uid = current_user_id()
    report = reports.owned_lost_report(db, report_id, uid)
    shared = consent.shared_sightings(db, report_id, uid)
    labels = area_labels([s.area for s in shared])
    return {"last_seen": {"lat": report.last_seen_point.lat, "lon": report.last_seen_point.lon,
                          "radius_m": report.radius_m, "time": json_time(report.last_seen)},
            "sightings": [{"match_id": s.match_id, "label": s.label, "first_time": json_time(s.first_time),
                           "last_time": json_time(s.last_time), "area": area_json(s.area),
                           "area_label": labels[s.area.cell], "distance_m": s.distance_m,
                           "image": url_for("media.match_sighting", match_id=s.match_id)}
                          for s in shared]}


def found_match_json(m: consent.FoundMatch) -> dict[str, Any]:
    return {"match_id": m.match_id, "lost_report_id": m.lost_report_id,
            "found_report_id": m.found_report_id, "score": round(m.score, 3), "area": area_json(m.area),
            "found_at": json_time(m.found_at), "source": m.source, "photos": photo_urls(m.photo_ids)}


# ---------------------------------------------------------------- pages


@bp.before_request
def no_tokens() -> Any:
    return refuse_upload_tokens()


@bp.get("/reports")
@login_required
def reports_page() -> Any:
    uid = current_user_id()
    db = get_db()
    return render_template("owner/reports.html", lost=reports.list_lost_reports(db, owner_id=uid),
                           found=reports.list_found_reports(db, reporter_id=uid))


def _lost_fields(form: LostReportForm) -> dict[str, Any]:
    return {"pet_name": form.pet_name.data or "", "species": form.species.data,
            "lat": form.lat.data, "lon": form.lon.data,
            "last_seen": local_time(form.last_seen.data, form.utc_offset.data, "the last-seen time",
                                    form.time_zone.data),
            "radius_m": form.radius_m.data, "days": _whole(form.days.data, "days", 3),
            "description": form.description.data or "", "open_to": form.open_to.data}


@bp.route("/reports/new", methods=["GET", "POST"])
@login_required
@limiter.limit(REPORT_LIMIT, key_func=user_or_address, methods=["POST"])
def new_report() -> Any:
    form = LostReportForm()
    if request.method == "GET":
        form.submission_key.data = uuid.uuid4().hex
        form.time_zone.data = settings().time_zone
    error = None
    if form.validate_on_submit():
        try:
            report, run = submit_lost(settings(), get_db(), current_user_id(),
                                      photos=read_photos(request.files.getlist(form.photos.name)),
                                      submission_key=form.submission_key.data or None, **_lost_fields(form))
        except (UserError, ImageError) as exc:
            error = form_kept(exc)  # the page comes back with everything typed
        else:
            if run is not None:
                flash(f"The search for {report.pet_name} has started: {run.sightings_compared} sighting(s) "
                      f"compared, {len(run.asked)} camera owner(s) asked. New footage near "
                      "the last-seen place is checked as it arrives.", "ok")
            return redirect(url_for("owner.report", report_id=report.id))
    elif request.method == "POST":
        error = "Check the fields marked below."
    status = 400 if request.method == "POST" else 200
    return render_template("owner/new_report.html", form=form, error=error,
                           max_photos=MAX_PHOTOS), status


@bp.get("/reports/<int:report_id>")
@login_required
def report(report_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    state = search_status(db, report_id, uid)
    shared = consent.shared_sightings(db, report_id, uid)
    contact_form = ContactForm(open_to=contact_preferences.open_to(db, report_id))
    return render_template(
        "owner/report.html", report=state.report, state=state, shared=shared,
        labels=area_labels([s.area for s in shared]),
        found_matches=consent.found_matches(db, uid, lost_report_id=report_id),
        renew_form=RenewForm(), contact_form=contact_form,
        open_to_text=contact_preferences.OPEN_TO)


@bp.post("/reports/<int:report_id>/renew")
@login_required
def renew(report_id: int) -> Any:
    form = RenewForm()
    if not form.validate_on_submit():
        reports.owned_lost_report(get_db(), report_id, current_user_id())
        flash("Choose how long to keep searching; nothing changed.", "problem")
        return redirect(url_for("owner.report", report_id=report_id))
    report = reports.renew(get_db(), report_id, current_user_id(),
                           extend_by=timedelta(days=_whole(form.days.data, "days", 3)))
    flash(f"Renewed: the search for {report.pet_name} goes on until "
          f"{report.expires:%d %b %Y %H:%M} UTC.", "ok")
    return redirect(url_for("owner.report", report_id=report_id))


@bp.post("/reports/<int:report_id>/contact")
@login_required
def contact(report_id: int) -> Any:
    form = ContactForm()
    if not form.validate_on_submit():
        reports.owned_lost_report(get_db(), report_id, current_user_id())
        flash("Choose who may write to you; nothing changed.", "problem")
    else:
        contact_preferences.set_open_to(get_db(), report_id, current_user_id(), form.open_to.data)
        flash("Saved: " + contact_preferences.OPEN_TO[form.open_to.data] + " may write to you.", "ok")
    return redirect(url_for("owner.report", report_id=report_id))


@bp.route("/reports/<int:report_id>/found", methods=["GET", "POST"])
@login_required
def mark_found(report_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    report = reports.owned_lost_report(db, report_id, uid)
    form = FoundForm()
    if form.validate_on_submit():
        retention.mark_found(db, report_id, uid)
        if form.delete_all.data:
            reports.delete_lost_report(db, report_id, uid)
            flash(f"Wonderful news about {report.pet_name}! The search ended and everything about it "
                  "was deleted.", "ok")
            return redirect(url_for("owner.reports_page"))
        flash(f"Wonderful news about {report.pet_name}! The search has ended: its photo vectors and "
              "every request that was not shared are deleted, and no one else will be asked.", "ok")
        return redirect(url_for("owner.report", report_id=report_id))
    return render_template("owner/found_confirm.html", report=report, form=form)


@bp.route("/reports/<int:report_id>/delete", methods=["GET", "POST"])
@login_required
def delete(report_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    report = reports.owned_lost_report(db, report_id, uid)
    form = ConfirmForm()
    if form.validate_on_submit():
        reports.delete_lost_report(db, report_id, uid)
        flash(f"The report for {report.pet_name} is deleted, with its photos, matches and messages.", "ok")
        return redirect(url_for("owner.reports_page"))
    return render_template("owner/delete_confirm.html", report=report, form=form)


# ---------------------------------------------------------------- JSON API


@bp.post("/api/photos/check")
@login_required
@limiter.limit(PHOTO_CHECK_LIMIT, key_func=user_or_address)
def api_check_photo() -> Any:
    """The wizard's instant check of one photo (multipart field ``photo``, optional ``species``):
    200 with ``found`` true or false and a message to show; 400 for a file that is not an image."""
    photos = read_photos(request.files.getlist("photo"))
    if len(photos) != 1:
        raise UserError("send one photo in the multipart field 'photo'")
    species = (request.form.get("species") or "dog").strip().lower()
    result = photo_check.check_photo(photos[0], species, load_models(settings()))
    return jsonify(found=result.found, species=result.species, message=result.message,
                   box=list(result.box) if result.box else None, width=result.width, height=result.height)


@bp.get("/api/reports")
@login_required
def api_reports() -> Any:
    found = reports.list_lost_reports(get_db(), owner_id=current_user_id())
    return jsonify(reports=[report_json(r) for r in found])


@bp.post("/api/reports")
@login_required
@limiter.limit(REPORT_LIMIT, key_func=user_or_address)
def api_create_report() -> Any:
    """Multipart: photos in ``photos`` (1-5); fields pet_name, species, lat, lon, last_seen (ISO
    8601 with offset), radius_m, days, description, open_to, submission_key.  201 with the report
    and its first search; 200 with the first report when the same submission came before."""
    form = request.form
    report, run = submit_lost(
        settings(), get_db(), current_user_id(), photos=read_photos(request.files.getlist("photos")),
        pet_name=form.get("pet_name", ""), species=form.get("species", "dog"), lat=form.get("lat"),
        lon=form.get("lon"), last_seen=report_time(form.get("last_seen"), "last_seen"),
        radius_m=form.get("radius_m") or None, days=_whole(form.get("days"), "days", 3),
        description=form.get("description", ""),
        open_to=form.get("open_to") or contact_preferences.DEFAULT,
        submission_key=form.get("submission_key") or None)
    body: dict[str, Any] = {"report": report_json(report), "created": run is not None}
    if run is not None:
        body["search"] = {"sightings_compared": run.sightings_compared, "new_matches": len(run.new_matches),
                          "requests_sent": len(run.asked)}
    return jsonify(body), 201 if run is not None else 200


@bp.get("/api/reports/<int:report_id>")
@login_required
def api_report(report_id: int) -> Any:
    db = get_db()
    state = search_status(db, report_id, current_user_id())
    return jsonify(report=report_json(state.report), status={
        "cameras_in_range": state.cameras_in_range, "sightings_checked": state.sightings_checked,
        "requests_sent": state.requests_sent, "shared": state.shared,
        "found_matches": state.found_matches,
        "expires_in_s": int(state.expires_in.total_seconds()) if state.expires_in is not None else None},
        open_to=contact_preferences.open_to(db, report_id))


@bp.get("/api/reports/<int:report_id>/sightings")
@login_required
def api_sightings(report_id: int) -> Any:
    return jsonify(_sightings_json(report_id))


@bp.get("/api/reports/<int:report_id>/found-matches")
@login_required
def api_found_matches(report_id: int) -> Any:
    found = consent.found_matches(get_db(), current_user_id(), lost_report_id=report_id)
    return jsonify(found_matches=[found_match_json(m) for m in found])


@bp.post("/api/reports/<int:report_id>/renew")
@login_required
def api_renew(report_id: int) -> Any:
    days = _whole(json_body().get("days"), "days", 3)
    report = reports.renew(get_db(), report_id, current_user_id(), extend_by=timedelta(days=days))
    return jsonify(report_json(report))


@bp.post("/api/reports/<int:report_id>/contact")
@login_required
def api_contact(report_id: int) -> Any:
    chosen = contact_preferences.set_open_to(get_db(), report_id, current_user_id(),
                                             str(json_body().get("open_to") or ""))
    return jsonify(open_to=chosen)


@bp.post("/api/reports/<int:report_id>/found")
@login_required
def api_mark_found(report_id: int) -> Any:
    """Ends the search (its vectors and unshared requests go); ``{"delete": true}`` also deletes
    the report with everything it holds."""
    uid = current_user_id()
    db = get_db()
    ended = retention.mark_found(db, report_id, uid)
    if json_body().get("delete") in (True, "true", "1", "yes"):
        reports.delete_lost_report(db, report_id, uid)
        return jsonify(ended=ended, deleted=True)
    return jsonify(ended=ended, deleted=False, report=report_json(reports.get_lost_report(db, report_id)))


@bp.delete("/api/reports/<int:report_id>")
@login_required
def api_delete(report_id: int) -> Any:
    reports.delete_lost_report(get_db(), report_id, current_user_id())
    return jsonify(deleted=True)
