"""The request's database connection and the app's settings and job queue.

One SQLite connection per request, opened on first use and closed when the request ends (as in
Flask's tutorial app).  The schema is migrated once, when the app is created, not per request.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g
from sqlite_utils import Database

from search_party.config import Settings
from search_party.ingest import jobs
from search_party.store.db import open_db

log = logging.getLogger(__name__)


def settings() -> Settings:
    return current_app.config["SETTINGS"]


def get_db() -> Database:
    if "db" not in g:
        g.db = open_db(settings().db_path, migrate=False)
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def enqueue_clip(clip_id: int) -> None:
    """Hand a new clip to the worker (huey on SQLite under the data folder, or Redis)."""
    if not current_app.config["ENQUEUE_CLIPS"]:
        return
    queue = current_app.extensions.get("search_party_queue")
    if queue is None:
        queue = current_app.extensions["search_party_queue"] = jobs.make_queue(settings())
    try:
        queue.enqueue(clip_id)
    except Exception:  # Redis is away: the clip is queued in SQLite, the source of truth
        log.warning("could not put clip %d in the queue; the worker's upkeep will", clip_id, exc_info=True)


def init_app(app: Flask) -> None:
    app.config["SETTINGS"].prepare_dirs()
    with open_db(app.config["SETTINGS"].db_path):  # create or migrate the schema once
        pass
    app.teardown_appcontext(close_db)
