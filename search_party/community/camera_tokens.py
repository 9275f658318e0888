"""Upload tokens for a camera-side uploader (`search-party agent watch`).

A token lets one program volunteer clips for one camera and read those clips' status, nothing
else: it cannot opt the camera in, answer a consent request or see a sighting.  The owner makes
one per uploader on the camera's page, sees it once, and can revoke it at any time; it is kept as
its sha256 (store/secret_tokens.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from search_party.community.cameras import owned_camera
from search_party.errors import NotFound, UserError
from search_party.store import secret_tokens
from search_party.store.db import from_db_time, insert_row, to_db_time, utcnow, write_transaction

TOKEN_PREFIX = "spcam_"
MAX_ACTIVE_TOKENS = 10


@dataclass(frozen=True)
class CameraToken:
    id: int
    camera_id: int
    label: str
    created: datetime
    last_used: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _token(row: dict) -> CameraToken:
    return CameraToken(
        id=row["id"], camera_id=row["camera_id"], label=row["label"],
        created=from_db_time(row["created"]),
        last_used=from_db_time(row["last_used"]) if row["last_used"] else None,
        revoked_at=from_db_time(row["revoked_at"]) if row["revoked_at"] else None)


def create_token(db: Database, camera_id: int, owner_id: int, label: str = "") -> tuple[CameraToken, str]:
    """A new upload token for the owner's camera.  Returns the record and the secret, which is
    shown once and never stored."""
    owned_camera(db, camera_id, owner_id)
    label = secret_tokens.clean_label(label, "a token")
    secret, digest = secret_tokens.new_secret(TOKEN_PREFIX)
    with write_transaction(db):
        active = db.execute("SELECT count(*) FROM camera_tokens WHERE camera_id = ? AND revoked_at IS NULL",
                            [camera_id]).fetchone()[0]
        if active >= MAX_ACTIVE_TOKENS:
            raise UserError(f"this camera already has {MAX_ACTIVE_TOKENS} active upload tokens; "
                            "revoke one you no longer use first")
        token_id = insert_row(db, "camera_tokens", {
            "camera_id": camera_id, "token_sha256": digest, "label": label,
            "created": to_db_time(utcnow()), "last_used": None, "revoked_at": None})
    return get_token(db, token_id, owner_id), secret


def get_token(db: Database, token_id: int, owner_id: int) -> CameraToken:
    rows = list(db.query(
        "SELECT t.* FROM camera_tokens t JOIN cameras c ON c.id = t.camera_id "
        "WHERE t.id = ? AND c.owner_id = ?", [token_id, owner_id]))
    if not rows:
        raise NotFound(f"upload token {token_id} does not exist or is not yours")
    return _token(rows[0])


def list_tokens(db: Database, camera_id: int, owner_id: int) -> list[CameraToken]:
    """The camera's tokens, active ones first, newest first."""
    owned_camera(db, camera_id, owner_id)
    return [_token(r) for r in db.query(
        "SELECT * FROM camera_tokens WHERE camera_id = ? ORDER BY revoked_at IS NOT NULL, id DESC",
        [camera_id])]


def revoke_token(db: Database, token_id: int, owner_id: int) -> CameraToken:
    """Revoke a token at once (revoking twice keeps the first time)."""
    get_token(db, token_id, owner_id)
    secret_tokens.revoke(db, "camera_tokens", token_id)
    return get_token(db, token_id, owner_id)


def camera_for_token(db: Database, secret: str) -> int | None:
    """The camera an active token belongs to, or None for an unknown or revoked token."""
    row = secret_tokens.find_active(db, "camera_tokens", TOKEN_PREFIX, secret)
    return None if row is None else row["camera_id"]
