"""Tokens of remote ingest workers: what lets a machine that shares no disk with the server
claim queued clips, download them and post their sightings back (web/internal.py).

A worker token is a kind of its own: a camera's upload token (``spcam_``) is never accepted where
a worker token (``spwrk_``) is, nor the other way round, and a signed-in session counts for
nothing on the internal API.  The operator makes one per worker machine from the shell, sees it
once, and can revoke it at any time; it is kept as its sha256 (store/secret_tokens.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from search_party.errors import NotFound
from search_party.store import secret_tokens
from search_party.store.db import from_db_time, insert_row, to_db_time, utcnow, write_transaction

TOKEN_PREFIX = "spwrk_"


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


def create_token(db: Database, label: str = "") -> tuple[WorkerToken, str]:
    """A new worker token.  Returns the record and the secret, which is shown once and never stored."""
    label = secret_tokens.clean_label(label, "a worker token")
    secret, digest = secret_tokens.new_secret(TOKEN_PREFIX)
    with write_transaction(db):
        token_id = insert_row(db, "worker_tokens", {
            "token_sha256": digest, "label": label, "created": to_db_time(utcnow())})
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
    secret_tokens.revoke(db, "worker_tokens", token_id)
    return get_token(db, token_id)


def token_for_secret(db: Database, secret: str) -> int | None:
    """The id of the active worker token ``secret`` is, or None (unknown, revoked, or another kind)."""
    row = secret_tokens.find_active(db, "worker_tokens", TOKEN_PREFIX, secret)
    return None if row is None else row["id"]
