"""The JSON API beside the pages: the camera owner's actions, and clip upload for a camera-side
uploader.

Two ways to authenticate:
- the session cookie of a signed-in user (as the pages use it); a request that changes anything
  must then carry the CSRF token in an ``X-CSRFToken`` header (GET /api/csrf, or the page's
  <meta name="csrf-token">);
- ``Authorization: Bearer <upload token>`` (made on a camera's page): only uploading clips to
  that camera, reading their status, and reading whether the camera takes clips now.  A token
  request never falls back to the session, and needs no CSRF token (a browser never sends it on
  its own).

Errors are {"error": "...", "advice": "..."} with a 4xx status (web/errors.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from search_party.community import activity, camera_tokens, cameras, consent
from search_party.community.cameras import Camera
from search_party.community.filming_time import check_time_zone
from search_party.errors import NotFound, UserError
from search_party.ingest import uploads
from search_party.store.storage import Sighting
from web.access import current_user_id
from web.db import enqueue_clip, get_db, settings
from web.errors import respond
from web.extensions import UPLOAD_LIMIT, csrf, limiter, user_or_address
from web.jsonio import json_body, json_time

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)  # checked below: for session requests only

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
UPLOAD_FIELD = "clip"


@bp.before_request
def authenticate() -> Any:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        camera_id = (camera_tokens.camera_for_token(get_db(), secret.strip())
                     if scheme.lower() == "bearer" else None)
        if camera_id is None:
            return respond(401, "this upload token is unknown or revoked; make a new one on the camera's page")
        g.token_camera_id = camera_id
        return None
    if request.method not in SAFE_METHODS:
        csrf.protect()
    return None


def session_only(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("token_camera_id") is not None:
            return respond(403, "an upload token may only upload clips and read their status; "
                                "sign in for everything else")
        if not current_user.is_authenticated:
            return respond(401, "sign in first")
        return view(*args, **kwargs)
    return wrapped


def session_or_token(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("token_camera_id") is None and not current_user.is_authenticated:
            return respond(401, "sign in first, or send the camera's upload token")
        return view(*args, **kwargs)
    return wrapped


def _may_use_camera(camera_id: int) -> None:
    """The upload token's own camera, or the signed-in owner's camera; else NotFound."""
    token_camera = g.get("token_camera_id")
    if token_camera is None:
        cameras.owned_camera(get_db(), camera_id, current_user_id())
    elif token_camera != camera_id:
        raise NotFound(f"camera {camera_id} does not exist or is not yours")


def camera_json(camera: Camera) -> dict[str, Any]:
    """A camera as its owner sees it (the exact place is theirs to know)."""
    return {"id": camera.id, "name": camera.name, "lat": camera.lat, "lon": camera.lon,
            "opted_in": camera.opted_in, "opted_in_at": json_time(camera.opted_in_at),
            "paused": camera.paused, "retention_days": camera.retention_days, "time_zone": camera.time_zone,
            "created": json_time(camera.created)}


def token_json(token: camera_tokens.CameraToken) -> dict[str, Any]:
    return {"id": token.id, "camera_id": token.camera_id, "label": token.label, "active": token.active,
            "created": json_time(token.created), "last_used": json_time(token.last_used),
            "revoked_at": json_time(token.revoked_at)}


def sighting_json(sighting: Sighting) -> dict[str, Any]:
    return {"id": sighting.id, "clip_id": sighting.clip_id, "label": sighting.label,
            "first_time": json_time(sighting.first_time), "last_time": json_time(sighting.last_time),
            "image": f"/media/sightings/{sighting.id}.jpg"}


def request_json(item: consent.ConsentRequest) -> dict[str, Any]:
    return {"match_id": item.match_id, "state": item.state, "pet_name": item.pet_name,
            "species": item.species, "description": item.description, "camera_id": item.camera_id,
            "camera_name": item.camera_name, "first_time": json_time(item.first_time),
            "last_time": json_time(item.last_time), "distance_m": item.distance_m,
            "asked_at": json_time(item.asked_at),
            "lost_photos": [f"/media/photos/{p}.jpg" for p in item.lost_photo_ids],
            "sighting_image": f"/media/matches/{item.match_id}/sighting.jpg"}


# ---------------------------------------------------------------- session helpers


@bp.get("/csrf")
def csrf_token() -> Any:
    return jsonify(csrf_token=generate_csrf())


@bp.get("/me")
@session_only
def me() -> Any:
    return jsonify(id=current_user.id, email=current_user.email, role=current_user.role,
                   display_name=current_user.display_name)


# ---------------------------------------------------------------- cameras


@bp.get("/cameras")
@session_only
def list_cameras() -> Any:
    return jsonify(cameras=[camera_json(c) for c in cameras.cameras_of(get_db(), current_user_id())])


@bp.post("/cameras")
@session_only
def add_camera() -> Any:
    body = json_body()
    camera = cameras.register_camera(get_db(), current_user_id(), lat=body.get("lat"), lon=body.get("lon"),
                                     name=str(body.get("name") or ""),
                                     retention_days=body.get("retention_days") or settings().retention_days)
    return jsonify(camera_json(camera)), 201


@bp.get("/cameras/<int:camera_id>")
@session_only
def get_camera(camera_id: int) -> Any:
    return jsonify(camera_json(cameras.owned_camera(get_db(), camera_id, current_user_id())))


@bp.delete("/cameras/<int:camera_id>")
@session_only
def delete_camera(camera_id: int) -> Any:
    deleted = cameras.delete_camera(get_db(), camera_id, current_user_id(), settings().index_path)
    return jsonify(deleted=True, sightings_deleted=deleted)


@bp.post("/cameras/<int:camera_id>/opt-in")
@session_only
def opt_in(camera_id: int) -> Any:
    if json_body().get("agree") not in (True, "true", "yes", "1", "y"):
        raise UserError('opting in needs the owner\'s explicit consent: send {"agree": true}')
    return jsonify(camera_json(cameras.opt_in(get_db(), camera_id, current_user_id())))


@bp.post("/cameras/<int:camera_id>/pause")
@session_only
def pause(camera_id: int) -> Any:
    return jsonify(camera_json(cameras.set_paused(get_db(), camera_id, current_user_id(), True)))


@bp.post("/cameras/<int:camera_id>/resume")
@session_only
def resume(camera_id: int) -> Any:
    return jsonify(camera_json(cameras.set_paused(get_db(), camera_id, current_user_id(), False)))


@bp.post("/cameras/<int:camera_id>/opt-out")
@session_only
def opt_out(camera_id: int) -> Any:
    deleted = cameras.opt_out(get_db(), camera_id, current_user_id(), settings().index_path)
    camera = cameras.owned_camera(get_db(), camera_id, current_user_id())
    return jsonify(camera=camera_json(camera), sightings_deleted=deleted)


# ---------------------------------------------------------------- upload tokens


@bp.get("/cameras/<int:camera_id>/tokens")
@session_only
def list_tokens(camera_id: int) -> Any:
    tokens = camera_tokens.list_tokens(get_db(), camera_id, current_user_id())
    return jsonify(tokens=[token_json(t) for t in tokens])


@bp.post("/cameras/<int:camera_id>/tokens")
@session_only
def create_token(camera_id: int) -> Any:
    token, secret = camera_tokens.create_token(get_db(), camera_id, current_user_id(),
                                               str(json_body().get("label") or ""))
    return jsonify(token=token_json(token), secret=secret), 201


@bp.post("/tokens/<int:token_id>/revoke")
@session_only
def revoke_token(token_id: int) -> Any:
    return jsonify(token_json(camera_tokens.revoke_token(get_db(), token_id, current_user_id())))


# ---------------------------------------------------------------- clips


@bp.post("/cameras/<int:camera_id>/clips")
@limiter.limit(UPLOAD_LIMIT, key_func=user_or_address)
@session_or_token
def upload_clips(camera_id: int) -> Any:
    """One or more files in the multipart field ``clip``; optional form fields ``start`` (ISO
    8601 with offset), ``modified`` (the file's time, seconds or milliseconds since 1970) and
    ``time_zone`` (the sender's IANA zone, for local times in camera file names).
    201 when a clip is new, 200 when every file was already uploaded (deduplicated by content)."""
    _may_use_camera(camera_id)
    # Before the body is read: a camera over its daily bytes, or a disk near full, gets 429/507.
    uploads.check_room(settings(), get_db(), camera_id, request.content_length or 0)
    files = [f for f in request.files.getlist(UPLOAD_FIELD) if f and f.filename]
    if not files:
        raise UserError(f"no clip in the upload: send the video file in the multipart field {UPLOAD_FIELD!r}")
    start = uploads.parse_start(request.form.get("start"))
    modified = uploads.parse_modified(request.form.get("modified"))
    time_zone = check_time_zone(request.form.get("time_zone"))
    results = [uploads.receive_clip(settings(), get_db(), camera_id, f.stream, f.filename,
                                    start=start, modified=modified, time_zone=time_zone, enqueue=enqueue_clip)
               for f in files]
    created = any(not r.duplicate for r in results)
    return jsonify(clips=[r.as_dict() for r in results]), 201 if created else 200


@bp.get("/cameras/<int:camera_id>/state")
@session_or_token
def camera_state(camera_id: int) -> Any:
    """Whether the camera takes clips now: what an agent asks before it sends anything.  A token
    reads only its own camera, and only this (never the camera's place or name)."""
    _may_use_camera(camera_id)
    camera = cameras.get_camera(get_db(), camera_id)
    return jsonify(id=camera.id, opted_in=camera.opted_in, paused=camera.paused,
                   accepting=camera.opted_in and not camera.paused, time_zone=camera.time_zone)


@bp.get("/cameras/<int:camera_id>/clips")
@session_or_token
def list_clips(camera_id: int) -> Any:
    _may_use_camera(camera_id)
    clips = uploads.camera_clips(get_db(), camera_id)
    return jsonify(clips=[uploads.describe(c).as_dict() for c in clips])


@bp.get("/clips/<int:clip_id>")
@session_or_token
def get_clip(clip_id: int) -> Any:
    token_camera = g.get("token_camera_id")
    if token_camera is None:
        clip = cameras.owned_clip(get_db(), clip_id, current_user_id())
    else:
        clip = uploads.camera_clip(get_db(), clip_id, token_camera)
    return jsonify(uploads.describe(clip).as_dict())


@bp.get("/clips/<int:clip_id>/sightings")
@session_only
def clip_sightings(clip_id: int) -> Any:
    found = cameras.sightings_of_clip(get_db(), clip_id, current_user_id())
    return jsonify(sightings=[sighting_json(s) for s in found])


# ---------------------------------------------------------------- consent and activity


@bp.get("/requests")
@session_only
def list_requests() -> Any:
    which = request.args.get("state", "asked")
    states = ("shared", "declined", "expired") if which == "answered" else (which,)
    found = consent.requests_for_owner(get_db(), current_user_id(), states=states)
    return jsonify(requests=[request_json(r) for r in found])


@bp.post("/requests/<int:match_id>/share")
@session_only
def share(match_id: int) -> Any:
    match = consent.answer(get_db(), match_id, current_user_id(), True)
    return jsonify(match_id=match.id, state=match.state)


@bp.post("/requests/<int:match_id>/decline")
@session_only
def decline(match_id: int) -> Any:
    match = consent.answer(get_db(), match_id, current_user_id(), False)
    return jsonify(match_id=match.id, state=match.state)


@bp.get("/activity")
@session_only
def activity_log() -> Any:
    camera_id = request.args.get("camera", type=int)
    entries = activity.for_owner(get_db(), current_user_id(), camera_id=camera_id)
    return jsonify(activity=[{"id": e.id, "camera_id": e.camera_id, "event": e.event,
                              "pet_name": e.pet_name, "species": e.species, "sightings": e.sightings,
                              "likely": e.likely, "at": json_time(e.at), "text": e.describe()}
                             for e in entries])
