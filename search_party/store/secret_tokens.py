"""Secret tokens kept only as their sha256: a camera's upload tokens and remote workers' tokens.

A token's secret carries its kind's prefix (so a secret scanner, or a person, recognises a leaked
one, and one kind is never accepted where another is), is shown once when made, and is looked up
by its hash (a database leak gives no working token, and no comparison leaks its characters
through timing).  Revoking keeps the row, so an operator can still see what a token was.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlite_utils import Database

from search_party.errors import UserError
from search_party.store.db import from_db_time, sql_name, to_db_time, utcnow, write_transaction

TABLES = ("camera_tokens", "worker_tokens")
MAX_LABEL = 60
MAX_SECRET = 200  # longer than any secret made here: refused before it is hashed
LAST_USED_RESOLUTION = timedelta(minutes=1)  # polls and heartbeats do not write on every request


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> tuple[str, str]:
    """A fresh secret with ``prefix`` and the digest that is stored in its place."""
    secret = prefix + secrets.token_urlsafe(32)
    return secret, digest(secret)


def clean_label(label: str, what: str) -> str:
    """``label`` on one line with single spaces; UserError when longer than ``MAX_LABEL``."""
    label = " ".join(str(label).split())
    if len(label) > MAX_LABEL:
        raise UserError(f"{what}'s label may have at most {MAX_LABEL} characters")
    return label


def find_active(db: Database, table: str, prefix: str, secret: str) -> dict[str, Any] | None:
    """The active row of ``table`` whose secret is ``secret``, or None (unknown, revoked or of
    another kind); notes when it was used, at most once per ``LAST_USED_RESOLUTION``."""
    if not secret.startswith(prefix) or len(secret) > MAX_SECRET:
        return None
    rows = list(db.query(f"SELECT * FROM {sql_name(table, TABLES)} WHERE token_sha256 = ? AND revoked_at IS NULL",
                         [digest(secret)]))
    if not rows:
        return None
    now = utcnow()
    if rows[0]["last_used"] is None or now - from_db_time(rows[0]["last_used"]) > LAST_USED_RESOLUTION:
        with write_transaction(db):
            db.execute(f"UPDATE {sql_name(table, TABLES)} SET last_used = ? WHERE id = ?",
                       [to_db_time(now), rows[0]["id"]])
    return rows[0]


def revoke(db: Database, table: str, token_id: int) -> None:
    """Revoke at once; revoking twice keeps the first time."""
    with write_transaction(db):
        db.execute(f"UPDATE {sql_name(table, TABLES)} SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                   [to_db_time(utcnow()), token_id])
