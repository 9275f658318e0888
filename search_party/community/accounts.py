"""Accounts, the one place users are defined: residents, shelters (usable once an admin approves
them) and admins.

A resident can be a pet owner and a camera owner at once.  Passwords are hashed with Argon2id
(argon2-cffi's defaults, re-hashed on sign-in when those defaults grow), so the web app never
stores or compares a password itself.  Each account has a random session key that every signed-in
session carries (``signed_in_account``); a password change or reset replaces it, which ends every
session of the account on every device, and a deleted account's id is never given to another.

Deleting an account deletes everything the account brought: its cameras with their clips,
sightings, crops and vectors, its lost and found reports with their photos, query vectors and
matches, its conversations and its inbox (all by cascade, in one transaction); the FAISS index
file is brought in step at once so no deleted vector stays in it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlite_utils import Database

from search_party.community import limits
from search_party.errors import Forbidden, NotFound, UserError
from search_party.search.geofence import Point, parse_point
from search_party.store.db import from_db_time, insert_row, to_db_time, utcnow, write_transaction
from search_party.store.vector_index import VectorIndex

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # Argon2 takes any length; this only stops a megabyte "password"
MAX_DISPLAY_NAME = 60
RESET_TOKEN_TTL = timedelta(hours=1)
MAX_SERVICE_RADIUS_M = 100_000.0  # a shelter serves a city and its outskirts, not a country

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a wrong email costs as long as a wrong
    password (made on first use: hashing takes a noticeable fraction of a second)."""
    return _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: str
    display_name: str
    created: datetime
    has_password: bool
    # Carried by each signed-in session; replaced to end them all (not a secret on its own: the
    # session cookie that holds it is signed with the server's key).
    session_key: str = field(repr=False)


@dataclass(frozen=True)
class Shelter:
    user_id: int
    name: str
    location: Point
    service_radius_m: float
    approved_at: datetime | None
    approved_by: int | None
    created: datetime

    @property
    def approved(self) -> bool:
        return self.approved_at is not None


@dataclass(frozen=True)
class Erasure:
    """What deleting an account removed (counted just before the delete)."""

    cameras: int
    sightings: int
    lost_reports: int
    found_reports: int
    messages: int


def _account(row: dict) -> Account:
    return Account(id=row["id"], email=row["email"], role=row["role"],
                   display_name=row["display_name"], created=from_db_time(row["created"]),
                   has_password=row["password_hash"] is not None, session_key=row["session_key"])


def _shelter(row: dict) -> Shelter:
    return Shelter(user_id=row["user_id"], name=row["name"], location=Point(row["lat"], row["lon"]),
                   service_radius_m=row["service_radius_m"],
                   approved_at=from_db_time(row["approved_at"]) if row["approved_at"] else None,
                   approved_by=row["approved_by"], created=from_db_time(row["created"]))


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")


def _check_display_name(name: str) -> str:
    name = " ".join(name.split())
    if len(name) > MAX_DISPLAY_NAME:
        raise UserError(f"a display name may have at most {MAX_DISPLAY_NAME} characters")
    if "@" in name:
        raise UserError("a display name may not contain '@': others see it, and never your email")
    return name


def _check_email(email: str) -> str:
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email) or len(email) > 254:
        raise UserError(f"{email!r} is not an email address")
    return email


def hash_password(password: str) -> str:
    _check_password(password)
    return _hasher.hash(password)


# ---------------------------------------------------------------- accounts


def get_account(db: Database, user_id: int) -> Account:
    rows = list(db.query("SELECT * FROM users WHERE id = ?", [user_id]))
    if not rows:
        raise NotFound(f"user {user_id} does not exist")
    return _account(rows[0])


def signed_in_account(db: Database, user_id: int, session_key: str) -> Account | None:
    """The account a session names, if that session is still valid: the account exists and its
    session key has not changed since the session began (None otherwise)."""
    rows = list(db.query("SELECT * FROM users WHERE id = ?", [user_id]))
    if not rows or not hmac.compare_digest(rows[0]["session_key"].encode(), session_key.encode()):
        return None
    return _account(rows[0])


def _new_session_key() -> str:
    return secrets.token_hex(16)


def find_account(db: Database, email: str) -> Account | None:
    rows = list(db.query("SELECT * FROM users WHERE email = ?", [email.strip()]))
    return _account(rows[0]) if rows else None


def create_user(db: Database, email: str, password: str | None = None, *, role: str = "resident",
                display_name: str = "") -> Account:
    """A new resident or admin account.  Shelters sign up with ``register_shelter``.  Without a
    password the account can only be used from the CLI (or after a password reset)."""
    email = _check_email(email)
    if role not in ("resident", "admin"):
        raise UserError(f"role {role!r} cannot be created here: residents and admins only "
                        "(a shelter registers with its details and waits for an admin)")
    display_name = _check_display_name(display_name)
    password_hash = hash_password(password) if password is not None else None
    with write_transaction(db):
        if find_account(db, email) is not None:
            raise UserError(f"an account with the email {email} already exists; sign in or reset "
                            "its password")
        user_id = insert_row(db, "users", {
            "email": email, "role": role, "display_name": display_name,
            "password_hash": password_hash, "created": to_db_time(utcnow()),
        })
    return get_account(db, user_id)


def find_or_create_user(db: Database, email: str) -> Account:
    """The account with this e-mail; a new resident without a password if there is none (the
    operator's CLI registers cameras for owners this way; they set a password by a reset)."""
    return find_account(db, email) or create_user(db, email)


def authenticate(db: Database, email: str, password: str) -> Account | None:
    """The account if the password is right, else None (the same for an unknown email)."""
    rows = list(db.query("SELECT * FROM users WHERE email = ?", [email.strip()]))
    stored = rows[0]["password_hash"] if rows else None
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if stored is None:
        return None
    if _hasher.check_needs_rehash(stored):
        with write_transaction(db):
            db.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                       [_hasher.hash(password), rows[0]["id"]])
    return _account(rows[0])


def set_password(db: Database, user_id: int, password: str) -> Account:
    """A new password; every session of the account ends (the caller signs the current one in
    again with the returned account if it should stay)."""
    password_hash = hash_password(password)
    get_account(db, user_id)
    with write_transaction(db):
        db.execute("UPDATE users SET password_hash = ?, session_key = ? WHERE id = ?",
                   [password_hash, _new_session_key(), user_id])
        db.execute("DELETE FROM password_resets WHERE user_id = ?", [user_id])
    return get_account(db, user_id)


def set_display_name(db: Database, user_id: int, display_name: str) -> Account:
    name = _check_display_name(display_name)
    get_account(db, user_id)
    with write_transaction(db):
        db.execute("UPDATE users SET display_name = ? WHERE id = ?", [name, user_id])
    return get_account(db, user_id)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_password_reset(db: Database, email: str, now: datetime | None = None) -> str | None:
    """A one-use reset token for the account (only its hash is stored), or None when no account
    has this email.  The caller e-mails the token and tells the visitor the same thing either way."""
    account = find_account(db, email)
    if account is None:
        return None
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with write_transaction(db):
        db.execute("DELETE FROM password_resets WHERE user_id = ? OR expires < ?",
                   [account.id, to_db_time(now)])
        db.table("password_resets").insert({
            "token_sha256": _token_digest(token), "user_id": account.id,
            "expires": to_db_time(now + RESET_TOKEN_TTL), "used_at": None})
    return token


def reset_password(db: Database, token: str, password: str, now: datetime | None = None) -> Account:
    """Set a new password with a reset token; the token works once and for RESET_TOKEN_TTL."""
    password_hash = hash_password(password)
    now = now or utcnow()
    with write_transaction(db):
        row = db.execute("SELECT user_id, expires, used_at FROM password_resets WHERE token_sha256 = ?",
                         [_token_digest(token)]).fetchone()
        if row is None or row[2] is not None or from_db_time(row[1]) < now:
            raise UserError("this password reset link is invalid or has expired; ask for a new one")
        db.execute("UPDATE users SET password_hash = ?, session_key = ? WHERE id = ?",
                   [password_hash, _new_session_key(), row[0]])
        db.execute("DELETE FROM password_resets WHERE user_id = ?", [row[0]])
    return get_account(db, row[0])


# ---------------------------------------------------------------- shelters


def register_shelter(db: Database, email: str, password: str | None, *, name: str, lat: object,
                     lon: object, service_radius_m: float) -> Shelter:
    """A shelter account, waiting for an admin's approval before it can act as a shelter."""
    email = _check_email(email)
    name = " ".join(str(name).split())
    if not 1 <= len(name) <= 120:
        raise UserError("a shelter needs a name of 1 to 120 characters")
    point = parse_point(lat, lon)
    if not 0 < float(service_radius_m) <= MAX_SERVICE_RADIUS_M:
        raise UserError(f"a service area radius must be more than 0 and at most "
                        f"{MAX_SERVICE_RADIUS_M / 1000:.0f} km")
    password_hash = hash_password(password) if password is not None else None
    now = to_db_time(utcnow())
    with write_transaction(db):
        if find_account(db, email) is not None:
            raise UserError(f"an account with the email {email} already exists")
        user_id = insert_row(db, "users", {
            "email": email, "role": "shelter", "display_name": name[:MAX_DISPLAY_NAME],
            "password_hash": password_hash, "created": now})
        db.table("shelters").insert({
            "user_id": user_id, "name": name, "lat": point.lat, "lon": point.lon,
            "service_radius_m": float(service_radius_m), "approved_at": None, "approved_by": None,
            "created": now})
    return get_shelter(db, user_id)


def get_shelter(db: Database, user_id: int) -> Shelter:
    rows = list(db.query("SELECT * FROM shelters WHERE user_id = ?", [user_id]))
    if not rows:
        raise NotFound(f"user {user_id} is not a shelter")
    return _shelter(rows[0])


def list_shelters(db: Database, pending_only: bool = False) -> list[Shelter]:
    where = " WHERE approved_at IS NULL" if pending_only else ""
    return [_shelter(r) for r in db.query(f"SELECT * FROM shelters{where} ORDER BY user_id")]


def require_admin(db: Database, user_id: int) -> Account:
    account = get_account(db, user_id)
    if account.role != "admin":
        raise Forbidden("only an admin may do this")
    return account


def approve_shelter(db: Database, shelter_user_id: int, admin_id: int) -> Shelter:
    """An admin verifies a shelter; approving twice keeps the first approval."""
    require_admin(db, admin_id)
    get_shelter(db, shelter_user_id)
    with write_transaction(db):
        db.execute("UPDATE shelters SET approved_at = ?, approved_by = ? "
                   "WHERE user_id = ? AND approved_at IS NULL",
                   [to_db_time(utcnow()), admin_id, shelter_user_id])
    return get_shelter(db, shelter_user_id)


def approved_shelter(db: Database, user_id: int) -> Shelter:
    """The user's shelter, if an admin has approved it; otherwise Forbidden."""
    try:
        shelter = get_shelter(db, user_id)
    except NotFound:
        raise Forbidden("only a shelter account may do this") from None
    if not shelter.approved:
        raise Forbidden("this shelter account is waiting for an admin's approval")
    return shelter


# ---------------------------------------------------------------- erasure


def delete_account(db: Database, user_id: int, *, index_path: Path | str | None = None) -> Erasure:
    """Delete the account and all its data in one transaction (see the module notes).  Entries in
    other camera owners' activity logs keep that a search happened, not whose dog it was; the
    day's abuse limits keep only a digest of the e-mail (search_party.community.limits)."""
    account = get_account(db, user_id)
    with write_transaction(db):
        erasure = Erasure(
            cameras=db.execute("SELECT count(*) FROM cameras WHERE owner_id = ?", [user_id]).fetchone()[0],
            sightings=db.execute("SELECT count(*) FROM sightings WHERE camera_id IN "
                                 "(SELECT id FROM cameras WHERE owner_id = ?)", [user_id]).fetchone()[0],
            lost_reports=db.execute("SELECT count(*) FROM lost_reports WHERE owner_id = ?",
                                    [user_id]).fetchone()[0],
            found_reports=db.execute("SELECT count(*) FROM found_reports WHERE reporter_id = ?",
                                     [user_id]).fetchone()[0],
            messages=db.execute("SELECT count(*) FROM messages WHERE sender_id = ?", [user_id]).fetchone()[0],
        )
        db.execute("UPDATE camera_activity SET pet_name = '', lost_report_id = NULL "
                   "WHERE lost_report_id IN (SELECT id FROM lost_reports WHERE owner_id = ?)", [user_id])
        limits.keep_after_erasure(db, user_id, account.email, utcnow())
        db.execute("DELETE FROM users WHERE id = ?", [user_id])
    if index_path is not None and erasure.sightings:
        VectorIndex.refresh(db, index_path)
    return erasure
