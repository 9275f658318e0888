"""Error pages that say what happened and what to do next; JSON ({"error": ...}) under /api/ and /internal/.

A search_party UserError becomes a 400 with its own message (Forbidden 403, NotFound 404), so
a route may simply let the domain refuse bad input.  Anything unexpected is logged with its
traceback and shown as a 500 that gives nothing away.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from search_party.community.limits import RateLimited
from search_party.errors import Forbidden, ImageError, InsufficientStorage, ModelError, NotFound, UserError

log = logging.getLogger(__name__)

# (title, what to do next) for each status a visitor can meet.
ADVICE = {
    400: ("This request could not be used", "Check what you entered and try again."),
    401: ("Please sign in", "Sign in, then try again."),
    403: ("Not yours to see", "You are signed in as someone who may not open this. "
          "If it should be yours, sign in with the right account."),
    404: ("Not found", "It may have been deleted, or the link is wrong. Go back to your cameras or the home page."),
    405: ("Not allowed here", "Use the page's own buttons and links rather than typing this address."),
    413: ("That upload is too large", "Send a shorter clip, or fewer clips at a time."),
    429: ("Too many tries", "Wait a few minutes, then try again."),
    500: ("Something went wrong on our side", "Try again in a minute. If it keeps happening, tell the "
          "person who runs this server what you were doing."),
    503: ("Not ready yet", "Part of the server is not ready (a model file may be missing). Tell its operator."),
    507: ("The server is out of room", "Nothing was stored. Try again later; if it lasts, tell the "
          "person who runs this server."),
}


def _status_of_user_error(exc: UserError) -> int:
    if isinstance(exc, RateLimited):  # a daily limit: 429 tells clients to back off, not to fix input
        return 429
    if isinstance(exc, InsufficientStorage):  # the server's disk, not the input: try again later
        return 507
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    return 400


def respond(status: int, message: str | None = None, headers: dict[str, str] | None = None) -> Any:
    title, advice = ADVICE.get(status, ADVICE[500] if status >= 500 else ADVICE[400])
    if request.path.startswith(("/api/", "/internal/")):
        body = jsonify(error=message or title, advice=advice)
        return body, status, headers or {}
    return render_template("error.html", status=status, title=title, message=message,
                           advice=advice), status, headers or {}


def _max_upload_message(app: Flask) -> str:
    limit = app.config.get("MAX_CONTENT_LENGTH")
    shown = f"{limit / 2**20:.3g} MB" if limit and limit >= 2**20 else f"{(limit or 0) / 1024:.0f} kB"
    size = f" The limit is {shown} per upload." if limit else ""
    return f"That upload is larger than this server accepts, so nothing was stored.{size}"


def register(app: Flask) -> None:
    @app.errorhandler(UserError)
    def user_error(exc: UserError) -> Any:
        return respond(_status_of_user_error(exc), str(exc))

    @app.errorhandler(ImageError)
    def image_error(exc: ImageError) -> Any:
        return respond(400, str(exc))

    @app.errorhandler(ModelError)
    def model_error(exc: ModelError) -> Any:
        log.error("model unavailable: %s", exc)
        return respond(503, "A model file this page needs is missing or altered.")

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        return respond(400, "This form has expired or did not come from this site, so nothing was "
                            "changed. Go back, reload the page and send it again.")

    @app.errorhandler(413)
    def too_large(exc: HTTPException) -> Any:
        return respond(413, _max_upload_message(app))

    @app.errorhandler(429)
    def too_many(exc: HTTPException) -> Any:
        headers = {k: v for k, v in exc.get_response().headers.items() if k.lower() == "retry-after"}
        return respond(429, f"Too many requests ({exc.description}).", headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return respond(exc.code or 500)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return respond(500)
