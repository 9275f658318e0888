"""Abuse limits kept in SQLite, so they hold across processes, restarts and deletions.

Search Party reaches into neighbours' footage, so what one account may ask of it is bounded:

- **radius cap**: a search's fence is at most ``geofence.MAX_RADIUS_M`` (refused, not clamped,
  by ``geofence.parse_radius_m``);
- **searches per account per day**: at most ``SEARCHES_PER_DAY`` lost reports an account creates
  in any 24 hours.  Each creation is logged in ``rate_events``, which outlives the report, so
  deleting a search does not give its place back: create-delete-create cannot sweep a street;
- **found-report rate**: at most ``FOUND_REPORTS_PER_DAY`` found reports per neighbour, and
  ``SHELTER_INTAKES_PER_DAY`` intakes per approved shelter, in any 24 hours;
- **consent requests per camera per day**: ``consent.REQUESTS_PER_CAMERA_PER_DAY``, counted from
  the camera owner's activity log, which also outlives deleted searches;
- **upload bytes per camera per day**: at most SEARCH_PARTY_CAMERA_DAILY_UPLOAD_MB of new clips
  per camera in any 24 hours (``check_upload_bytes``), counted from the clips table, so a token
  cannot fill the disk however fast it sends (the free-space floor is search_party/disk_space.py);
- **a search stays where it was put**: its last-seen point and radius are fixed when it is
  created (a trigger of schema 6 refuses any later change, whatever code asks); a search
  elsewhere is a new search, and counts against the daily limit.

- **deleting the account gives nothing back**: ``keep_after_erasure`` keeps a deleted account's
  events of the last 24 hours under a digest of its e-mail (no other trace of the account), and
  an account made again with that address counts them.

``take`` checks and logs in one step and must run inside the write transaction that creates the
report (as ``check_upload_bytes`` runs inside the one that registers a clip), so two requests
racing each other cannot both slip under the limit; ``check`` is the same
test without logging, to refuse before any model runs.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlite_utils import Database

from search_party.errors import UserError
from search_party.store.db import from_db_time, to_db_time

WINDOW = timedelta(days=1)
SEARCHES_PER_DAY = 3
FOUND_REPORTS_PER_DAY = 5
SHELTER_INTAKES_PER_DAY = 200
SEARCH, FOUND_REPORT, SHELTER_INTAKE = "search", "found_report", "shelter_intake"
LIMITS = {SEARCH: SEARCHES_PER_DAY, FOUND_REPORT: FOUND_REPORTS_PER_DAY,
          SHELTER_INTAKE: SHELTER_INTAKES_PER_DAY}
_WHAT = {SEARCH: "searches", FOUND_REPORT: "found reports", SHELTER_INTAKE: "intakes"}


class RateLimited(UserError):
    """An account reached one of its daily limits; the message says when it may try again."""


def email_digest(email: str) -> str:
    """What outlives a deleted account in the limits: the SHA-256 of its e-mail, case-folded
    (e-mail addresses are matched without regard to case, like the users table's)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _used(db: Database, user_id: int, kind: str, now: datetime) -> list[str]:
    if kind not in LIMITS:
        raise ValueError(f"unknown limit {kind!r}")
    since = to_db_time(now - WINDOW)
    email = db.execute("SELECT email FROM users WHERE id = ?", [user_id]).fetchone()
    digest = email_digest(email[0]) if email else ""
    return sorted(r[0] for r in db.execute(
        "SELECT at FROM rate_events WHERE user_id = ? AND kind = ? AND at > ? "
        "UNION ALL SELECT at FROM erased_rate_events WHERE email_sha256 = ? AND kind = ? AND at > ?",
        [user_id, kind, since, digest, kind, since]))


def check(db: Database, user_id: int, kind: str, now: datetime) -> None:
    """Raise RateLimited if ``user_id`` has used up today's ``kind`` (a sliding 24 hours)."""
    used = _used(db, user_id, kind, now)
    limit = LIMITS[kind]
    if len(used) >= limit:
        again = (from_db_time(used[-limit]) + WINDOW).strftime("%Y-%m-%d %H:%M")
        raise RateLimited(f"you have made {limit} {_WHAT[kind]} in the last 24 hours, the most an "
                          f"account may; the next is possible from {again} UTC")


def take(db: Database, user_id: int, kind: str, now: datetime) -> None:
    """``check``, then log one use (inside the caller's write transaction).  Events older than
    the window are dropped on the way: they can no longer count."""
    check(db, user_id, kind, now)
    db.execute("DELETE FROM rate_events WHERE at <= ?", [to_db_time(now - WINDOW)])
    db.execute("DELETE FROM erased_rate_events WHERE at <= ?", [to_db_time(now - WINDOW)])
    db.execute("INSERT INTO rate_events (user_id, kind, at) VALUES (?, ?, ?)",
               [user_id, kind, to_db_time(now)])


def keep_after_erasure(db: Database, user_id: int, email: str, now: datetime) -> None:
    """Before an account is deleted (inside that write transaction): keep its events of the
    last 24 hours under its e-mail's digest, so deleting the account gives none of them back."""
    db.execute("INSERT INTO erased_rate_events (email_sha256, kind, at) "
               "SELECT ?, kind, at FROM rate_events WHERE user_id = ? AND at > ?",
               [email_digest(email), user_id, to_db_time(now - WINDOW)])


def check_upload_bytes(db: Database, camera_id: int, adding: int, quota_bytes: int,
                       now: datetime, *, adding_clip: int | None = None) -> None:
    """Raise RateLimited if ``adding`` more bytes would take the clips ``camera_id`` sent in the
    last 24 hours over ``quota_bytes``; the message says from when it may send again.
    ``adding_clip`` is the clip being registered in the caller's open transaction (its bytes are
    ``adding``, not yet "sent")."""
    sent = db.execute("SELECT created, size_bytes FROM clips WHERE camera_id = ? AND created > ? "
                      "AND id IS NOT ? ORDER BY created",
                      [camera_id, to_db_time(now - WINDOW), adding_clip]).fetchall()
    used = sum(size for _, size in sent)
    if used + adding <= quota_bytes:
        return
    mb = 1024 * 1024
    if adding > quota_bytes:
        raise RateLimited(f"{adding / mb:,.1f} MB is more than a camera may send in a day "
                          f"({quota_bytes / mb:,.1f} MB), so nothing was stored; send shorter clips")
    again, left = "now", used
    for created, size in sent:  # the oldest clips leave the window first
        left -= size
        if left + adding <= quota_bytes:
            again = (from_db_time(created) + WINDOW).strftime("%Y-%m-%d %H:%M")
            break
    raise RateLimited(f"this camera has sent {used / mb:,.1f} MB of clips in the last 24 hours; "
                      f"{adding / mb:,.1f} MB more would pass the {quota_bytes / mb:,.1f} MB a camera may "
                      f"send in a day, so nothing was stored; more is accepted from {again} UTC")
