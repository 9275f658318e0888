"""The camera owner's pages: cameras (add on a map, opt in, pause, opt out, delete), clip uploads
and their processing status, upload tokens, the consent inbox and the activity log.

Every route takes the signed-in user's id to search_party, which refuses anything not theirs.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from search_party.community import activity, camera_tokens, cameras, consent
from search_party.community.limits import RateLimited
from search_party.errors import InsufficientStorage, UserError
from search_party.ingest import uploads
from web.access import current_user_id, login_required
from web.db import enqueue_clip, get_db, settings
from web.extensions import UPLOAD_LIMIT, limiter, user_or_address
from web.forms import CameraForm, ConfirmForm, FilmedAtForm, OptInForm, TimeZoneForm, TokenForm, UploadForm

bp = Blueprint("neighbour", __name__)


@bp.before_request
@login_required
def signed_in_only() -> None:
    """Every page here belongs to a signed-in camera owner."""


def _camera_page(camera_id: int) -> Any:
    return redirect(url_for("neighbour.camera", camera_id=camera_id))


# ---------------------------------------------------------------- cameras


@bp.get("/cameras", endpoint="cameras")
def cameras_page() -> Any:
    uid = current_user_id()
    db = get_db()
    return render_template("neighbour/cameras.html", cameras=cameras.cameras_of(db, uid),
                           asked=len(consent.requests_for_owner(db, uid)))



@bp.route("/cameras/new", methods=["GET", "POST"])
def add_camera() -> Any:
    form = CameraForm()
    error = None
    if form.validate_on_submit():
        try:
            camera = cameras.register_camera(
                get_db(), current_user_id(), lat=form.lat.data, lon=form.lon.data,
                name=form.name.data or "", retention_days=form.retention_days.data or 30)
        except UserError as exc:
            error = str(exc)
        else:
            flash("Camera added. It is opted out: nothing from it is used until you opt it in below.", "ok")
            return _camera_page(camera.id)
    status = 400 if request.method == "POST" else 200
    return render_template("neighbour/camera_new.html", form=form, error=error), status


@bp.get("/cameras/<int:camera_id>")
def camera(camera_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    cam = cameras.owned_camera(db, camera_id, uid)
    clips = [uploads.describe(c) for c in cameras.clips_of(db, camera_id, uid)[:50]]
    return render_template(
        "neighbour/camera.html", camera=cam, clips=clips,
        tokens=camera_tokens.list_tokens(db, camera_id, uid),
        opt_in_form=OptInForm(), token_form=TokenForm(), upload_form=UploadForm(),
        zone_form=TimeZoneForm(time_zone=cam.time_zone or ""),
        max_upload_mb=int(current_app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)),
        video_types=",".join(uploads.VIDEO_EXTENSIONS))


@bp.post("/cameras/<int:camera_id>/opt-in")
def opt_in(camera_id: int) -> Any:
    uid = current_user_id()
    form = OptInForm()
    if not form.validate_on_submit():
        cameras.owned_camera(get_db(), camera_id, uid)
        flash("Tick the box to opt this camera in; nothing changed.", "problem")
        return _camera_page(camera_id)
    cameras.opt_in(get_db(), camera_id, uid)
    flash("Opted in. Clips you upload from this camera will be searched for lost pets near it.", "ok")
    return _camera_page(camera_id)


@bp.post("/cameras/<int:camera_id>/time-zone")
def set_time_zone(camera_id: int) -> Any:
    form = TimeZoneForm()
    if not form.validate_on_submit():
        flash("A time zone name has at most 64 characters; nothing changed.", "problem")
        return _camera_page(camera_id)
    try:
        cam = cameras.set_time_zone(get_db(), camera_id, current_user_id(), form.time_zone.data or None)
    except UserError as exc:
        flash(str(exc), "problem")
    else:
        flash(f"Time zone set to {cam.time_zone}." if cam.time_zone else "Time zone cleared.", "ok")
    return _camera_page(camera_id)


@bp.post("/cameras/<int:camera_id>/pause")
def pause(camera_id: int) -> Any:
    cameras.set_paused(get_db(), camera_id, current_user_id(), True)
    flash("Paused: no new clips are accepted and no one is asked about this camera until you resume.", "ok")
    return _camera_page(camera_id)


@bp.post("/cameras/<int:camera_id>/resume")
def resume(camera_id: int) -> Any:
    cameras.set_paused(get_db(), camera_id, current_user_id(), False)
    flash("Resumed.", "ok")
    return _camera_page(camera_id)


@bp.route("/cameras/<int:camera_id>/opt-out", methods=["GET", "POST"])
def opt_out(camera_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    cam = cameras.owned_camera(db, camera_id, uid)
    form = ConfirmForm()
    if form.validate_on_submit():
        deleted = cameras.opt_out(db, camera_id, uid, settings().index_path)
        flash(f"Opted out. This camera's clips and {deleted} sighting(s) were deleted, and it will not "
              "be searched again unless you opt it in.", "ok")
        return _camera_page(camera_id)
    clips = cameras.clips_of(db, camera_id, uid)
    return render_template("neighbour/camera_opt_out.html", camera=cam, form=form, clips=len(clips),
                           sightings=sum(c.sightings_count or 0 for c in clips))


@bp.route("/cameras/<int:camera_id>/delete", methods=["GET", "POST"])
def delete(camera_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    cam = cameras.owned_camera(db, camera_id, uid)
    form = ConfirmForm()
    if form.validate_on_submit():
        deleted = cameras.delete_camera(db, camera_id, uid, settings().index_path)
        flash(f"Camera deleted with its clips, {deleted} sighting(s), upload tokens and activity log.", "ok")
        return redirect(url_for("neighbour.cameras"))
    return render_template("neighbour/camera_delete.html", camera=cam, form=form)


# ---------------------------------------------------------------- clips


@bp.post("/cameras/<int:camera_id>/clips")
@limiter.limit(UPLOAD_LIMIT, key_func=user_or_address)
def upload(camera_id: int) -> Any:
    """The no-JavaScript upload: several files in one form post.  The page's script sends each
    file to the JSON API instead, to show progress."""
    uid = current_user_id()
    db = get_db()
    cameras.owned_camera(db, camera_id, uid)
    uploads.check_room(settings(), db, camera_id, request.content_length or 0)  # 429 or 507
    form = UploadForm()
    files = [f for f in request.files.getlist(form.clips.name) if f and f.filename]
    if not form.validate_on_submit() or not files:
        flash("Choose one or more video clips to upload.", "problem")
        return _camera_page(camera_id)
    for file in files:
        try:
            status = uploads.receive_owned_clip(
                settings(), db, camera_id, uid, file.stream, file.filename, enqueue=enqueue_clip)
        except (RateLimited, InsufficientStorage) as exc:
            # Not this file's fault: answered 429 or 507 at once; the files before it are stored.
            raise type(exc)(f"{file.filename}: {exc}") from None
        except UserError as exc:
            flash(f"{file.filename}: {exc}", "problem")
        else:
            flash(f"{file.filename}: {status.message}", "ok")
    return _camera_page(camera_id)


@bp.get("/clips/<int:clip_id>")
def clip(clip_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    found = cameras.owned_clip(db, clip_id, uid)
    return render_template("neighbour/clip.html", clip=uploads.describe(found), record=found,
                           camera=cameras.owned_camera(db, found.camera_id, uid),
                           sightings=cameras.sightings_of_clip(db, clip_id, uid), filmed_form=FilmedAtForm())


@bp.post("/clips/<int:clip_id>/filmed-at")
def correct_filmed_at(clip_id: int) -> Any:
    """The owner states when the clip was filmed; its sightings' times move with it."""
    form = FilmedAtForm()
    cameras.owned_clip(get_db(), clip_id, current_user_id())
    try:
        if not form.validate_on_submit():
            raise UserError("enter when the clip starts, e.g. 2025-06-01 08:15")
        start = uploads.parse_local_time(form.filmed_at.data, form.offset_minutes.data)
        cameras.correct_clip_start(get_db(), clip_id, current_user_id(), start)
    except UserError as exc:
        flash(str(exc), "problem")
    else:
        flash("Saved: this clip's time, and its sightings' times, now follow what you entered.", "ok")
    return redirect(url_for("neighbour.clip", clip_id=clip_id))


# ---------------------------------------------------------------- upload tokens


@bp.post("/cameras/<int:camera_id>/tokens")
def create_token(camera_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    form = TokenForm()
    cam = cameras.owned_camera(db, camera_id, uid)
    if not form.validate_on_submit():
        flash("A label has at most 60 characters; no token was made.", "problem")
        return _camera_page(camera_id)
    token, secret = camera_tokens.create_token(db, camera_id, uid, form.label.data or "")
    # Shown on this page only, never put in a flash message or a URL (the session cookie is
    # signed, not encrypted).
    return render_template("neighbour/token_created.html", camera=cam, token=token, secret=secret,
                           server=request.host_url.rstrip("/"))


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int) -> Any:
    token = camera_tokens.revoke_token(get_db(), token_id, current_user_id())
    flash("Token revoked: the uploader using it can no longer send clips.", "ok")
    return _camera_page(token.camera_id)


# ---------------------------------------------------------------- consent inbox and activity


@bp.get("/requests")
def requests_page() -> Any:
    uid = current_user_id()
    db = get_db()
    return render_template(
        "neighbour/requests.html", asked=consent.requests_for_owner(db, uid),
        answered=consent.requests_for_owner(db, uid, states=("shared", "declined", "expired")))


def _answer(match_id: int, share: bool) -> Any:
    consent.answer(get_db(), match_id, current_user_id(), share)
    flash("Shared: the owner can now see this picture, its time and a rough area (never your camera's "
          "place)." if share else "Declined: nothing about this sighting is shown to anyone.", "ok")
    return redirect(url_for("neighbour.requests_page"))


@bp.post("/requests/<int:match_id>/share")
def share(match_id: int) -> Any:
    return _answer(match_id, True)


@bp.post("/requests/<int:match_id>/decline")
def decline(match_id: int) -> Any:
    return _answer(match_id, False)


@bp.get("/activity")
def activity_page() -> Any:
    uid = current_user_id()
    db = get_db()
    camera_id = request.args.get("camera", type=int)
    cam = cameras.owned_camera(db, camera_id, uid) if camera_id is not None else None
    return render_template("neighbour/activity.html", camera=cam,
                           entries=activity.for_owner(db, uid, camera_id=camera_id))
