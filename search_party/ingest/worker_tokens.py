"""Tokens of remote ingest workers: what lets a machine that shares no disk with the server
claim queued clips, download them and post their sightings back (web/internal.py).

A worker token is a kind of its own: a camera's upload token (``spcam_``) is never accepted where
a worker token (``spwrk_``) is, nor the other way round, and a signed-in session counts for
nothing on the internal API.  The operator makes one per worker machine from the shell, sees it
once, and can revoke it at any time; only its sha256 is stored, and it is looked up by that hash
(a database leak gives no working token, and no comparison leaks its characters through timing).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from search_party.errors import NotFound, UserError
from search_party.store.db import from_db_time, insert_row, to_db_time, utcnow, write_transaction

TOKEN_PREFIX = "spwrk_"  # lets a secret scanner, or a person, recognise a leaked token
MAX_LABEL = 60
LAST_USED_RESOLUTION = timedelta(minutes=1)  # heartbeats do not write on every request


@dataclass(frozen=True)
class WorkerToken:
    id: int
    label: str
    created: datetime
    last_used: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _token(row: dict) -> WorkerToken:
    return WorkerToken(
        id=row["id"], label=row["label"], created=from_db_time(row["created"]),
        last_used=from_db_time(row["last_used"]) if row["last_used"] else None,
        revoked_at=from_db_time(row["revoked_at"]) if row["revoked_at"] else None)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(db: Database, label: str = "") -> tuple[WorkerToken, str]:
    """A new worker token.  Returns the record and the secret, which is shown once and never stored."""
    label = " ".join(str(label).split())
    if len(label) > MAX_LABEL:
        raise UserError(f"a worker token's label may have at most {MAX_LABEL} characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(db):
        token_id = insert_row(db, "worker_tokens", {
            "token_sha256": _digest(secret), "label": label, "created": to_db_time(utcnow())})
    return get_token(db, token_id), secret


def get_token(db: Database, token_id: int) -> WorkerToken:
    rows = list(db.query("SELECT * FROM worker_tokens WHERE id = ?", [token_id]))
    if not rows:
        raise NotFound(f"worker token {token_id} does not exist")
    return _token(rows[0])


def list_tokens(db: Database) -> list[WorkerToken]:
    """Every worker token, active ones first, newest first."""
    return [_token(r) for r in db.query(
        "SELECT * FROM worker_tokens ORDER BY revoked_at IS NOT NULL, id DESC")]


def revoke_token(db: Database, token_id: int) -> WorkerToken:
    """Revoke a token at once (revoking twice keeps the first time).  Its worker's next request is
    refused; a clip it holds is put back in the queue once its lease runs out."""
    get_token(db, token_id)
    with write_transaction(db):
        db.execute("UPDATE worker_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                   [to_db_time(utcnow()), token_id])
    return get_token(db, token_id)


def token_for_secret(db: Database, secret: str) -> int | None:
    """The id of the active worker token ``secret`` is, or None (unknown, revoked, or another kind)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    row = db.execute("SELECT id, last_used FROM worker_tokens WHERE token_sha256 = ? AND revoked_at IS NULL",
                     [_digest(secret)]).fetchone()
    if row is None:
        return None
    now = utcnow()
    if row[1] is None or now - from_db_time(row[1]) > LAST_USED_RESOLUTION:
        with write_transaction(db):
            db.execute("UPDATE worker_tokens SET last_used = ? WHERE id = ?", [to_db_time(now), row[0]])
    return row[0]
