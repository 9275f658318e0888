"""The internal API of remote ingest workers, /internal/v1/... (search_party.ingest.remote_worker
is its one client; search_party.ingest.remote_intake does the work).

Only ``Authorization: Bearer <worker token>`` (search-party worker-token add) is accepted: a
camera's upload token, a signed-in session or no credential at all gets 401, whatever the route
(a write without a bearer token first meets the app's CSRF check, as everywhere: 400).  No CSRF
token with a bearer token (a browser never sends one by itself), and no rate limit (the
operator's own machines; a revoked token stops at once).  Errors are JSON; 409 means "this clip is not yours
(any more)": the worker drops it.

    GET  /internal/v1/models                 the embedder a worker must run
    POST /internal/v1/clips/<id>/claim       queued -> processing for this worker (409 if not queued)
    GET  /internal/v1/clips/<id>/file        the clip's bytes, streamed (header X-Claim)
    POST /internal/v1/clips/<id>/heartbeat   {"claim"}: still at it, renew the lease
    POST /internal/v1/clips/<id>/result      {"claim", "result"}: sightings stored exactly once
    POST /internal/v1/clips/<id>/failure     {"claim", "reason"}: failed with a reason
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request, send_file

from search_party.ingest import remote_intake, worker_tokens
from search_party.store.storage import ClaimLost
from web.db import get_db, settings
from web.errors import respond
from web.extensions import csrf
from web.jsonio import json_body

bp = Blueprint("internal", __name__, url_prefix="/internal/v1")
csrf.exempt(bp)  # bearer tokens only: see authenticate


@bp.before_request
def authenticate() -> Any:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" and request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()  # a browser's write meets the app's usual CSRF refusal first, then the 401
    token_id = worker_tokens.token_for_secret(get_db(), secret.strip()) if scheme.lower() == "bearer" else None
    if token_id is None:
        return respond(401, "this API takes only an active worker token (search-party worker-token add)")
    g.worker_token_id = token_id
    return None


@bp.errorhandler(ClaimLost)
def claim_lost(exc: ClaimLost) -> Any:
    return respond(409, str(exc))


def _claim(data: dict[str, Any]) -> str:
    held = data.get("claim")
    return held if isinstance(held, str) else ""


@bp.get("/models")
def models() -> Any:
    return jsonify(remote_intake.server_models(settings()))


@bp.post("/clips/<int:clip_id>/claim")
def claim(clip_id: int) -> Any:
    job = remote_intake.claim(settings(), get_db(), clip_id, g.worker_token_id)
    if job is None:
        return respond(409, f"clip {clip_id} is not queued (another worker has it, or it is finished)")
    return jsonify(job.as_json())


@bp.get("/clips/<int:clip_id>/file")
def clip_file(clip_id: int) -> Any:
    path = remote_intake.clip_file(settings(), get_db(), clip_id, request.headers.get("X-Claim", ""),
                                     g.worker_token_id)
    return send_file(path, mimetype="application/octet-stream", conditional=False, etag=False)


@bp.post("/clips/<int:clip_id>/heartbeat")
def heartbeat(clip_id: int) -> Any:
    remote_intake.renew(get_db(), clip_id, _claim(json_body()), g.worker_token_id)
    return jsonify(ok=True)


@bp.post("/clips/<int:clip_id>/result")
def result(clip_id: int) -> Any:
    data = json_body()
    ids = remote_intake.store_result(settings(), get_db(), clip_id, _claim(data), g.worker_token_id,
                                     data.get("result"))
    return jsonify(clip_id=clip_id, sightings=len(ids))


@bp.post("/clips/<int:clip_id>/failure")
def failure(clip_id: int) -> Any:
    data = json_body()
    remote_intake.store_failure(settings(), get_db(), clip_id, _claim(data), g.worker_token_id, data.get("reason"))
    return jsonify(clip_id=clip_id, status="failed")
