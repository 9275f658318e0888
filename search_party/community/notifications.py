"""The inbox (a table in SQLite) and e-mail: through SMTP when configured, otherwise to the log.

``notify`` only inserts an inbox row, inside whatever transaction the caller holds, so a
notification exists exactly when the change it announces was committed.  E-mail is sent later
by ``deliver_pending`` (the worker runs it every minute; the CLI after each command), never from
inside a transaction.  Each row is claimed before it is sent, so two deliverers never send one
message twice.  A delivery that fails for a reason that may pass (the server unreachable or
busy, a 4xx answer) is tried again after a growing pause (``RETRY_DELAYS``: minutes, then hours),
at most ``MAX_EMAIL_ATTEMPTS`` times in all; one the server refuses for good (a 5xx answer) is not.
A message that could not be e-mailed is marked ``failed`` and stays in the inbox, which is where
every message lives anyway: e-mail only says "look in Search Party".

E-mails carry no other user's address, no exact camera location and no photo.

SMTP settings (all optional; without SEARCH_PARTY_SMTP_HOST mail goes to the log) are the
``smtp_*`` fields of search_party.config.Settings.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from sqlite_utils import Database

from search_party.config import Settings
from search_party.store.db import from_db_time, insert_row, to_db_time, utcnow, write_transaction

log = logging.getLogger(__name__)

SMTP_TIMEOUT_S = 20
# The pause before each retry of a failed e-mail: a restarting mail server, then a longer outage.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                timedelta(hours=6))
MAX_EMAIL_ATTEMPTS = len(RETRY_DELAYS) + 1


@dataclass(frozen=True)
class Notification:
    id: int
    user_id: int
    kind: str
    subject: str
    body: str
    match_id: int | None
    lost_report_id: int | None
    conversation_id: int | None
    created: datetime
    read_at: datetime | None
    email_status: str


def _notification(row: dict) -> Notification:
    return Notification(
        id=row["id"], user_id=row["user_id"], kind=row["kind"], subject=row["subject"],
        body=row["body"], match_id=row["match_id"], lost_report_id=row["lost_report_id"],
        conversation_id=row["conversation_id"], created=from_db_time(row["created"]),
        read_at=from_db_time(row["read_at"]) if row["read_at"] else None,
        email_status=row["email_status"])


# ---------------------------------------------------------------- the inbox


def notify(db: Database, user_id: int, kind: str, subject: str, body: str, *,
           match_id: int | None = None, lost_report_id: int | None = None,
           conversation_id: int | None = None) -> int:
    """Put a message in the user's inbox (inside the caller's transaction); its e-mail follows
    with the next ``deliver_pending``.  Returns the notification id."""
    return insert_row(db, "notifications", {
        "user_id": user_id, "kind": kind, "subject": subject, "body": body,
        "match_id": match_id, "lost_report_id": lost_report_id,
        "conversation_id": conversation_id, "created": to_db_time(utcnow()),
        "read_at": None, "email_status": "pending"})


def inbox(db: Database, user_id: int, *, unread_only: bool = False, limit: int = 200) -> list[Notification]:
    """The user's messages, newest first."""
    where = " AND read_at IS NULL" if unread_only else ""
    return [_notification(r) for r in db.query(
        f"SELECT * FROM notifications WHERE user_id = ?{where} ORDER BY id DESC LIMIT ?",
        [user_id, limit])]


def unread_count(db: Database, user_id: int) -> int:
    return db.execute("SELECT count(*) FROM notifications WHERE user_id = ? AND read_at IS NULL",
                      [user_id]).fetchone()[0]


def mark_read(db: Database, user_id: int, notification_id: int) -> None:
    """Mark one of the user's own messages read (someone else's id changes nothing)."""
    with write_transaction(db):
        db.execute("UPDATE notifications SET read_at = coalesce(read_at, ?) WHERE id = ? AND user_id = ?",
                   [to_db_time(utcnow()), notification_id, user_id])


# ---------------------------------------------------------------- e-mail


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> str:
        """Deliver one message; returns the e-mail status to record ('sent' or 'logged')."""
        ...


class LogMailer:
    """No SMTP configured: the message goes to the log, where an operator can read it."""

    def send(self, to: str, subject: str, body: str) -> str:
        log.info("e-mail (no SMTP configured) to %s: %s\n%s", to, subject, body)
        return "logged"


class SmtpMailer:
    """Sends through the configured SMTP server, one connection per message."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host, "SmtpMailer needs SEARCH_PARTY_SMTP_HOST"
        self.host, self.port, self.tls = settings.smtp_host, settings.effective_smtp_port, settings.smtp_tls
        self.username = settings.smtp_user
        self.password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        self.sender = settings.smtp_from

    def send(self, to: str, subject: str, body: str) -> str:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        if self.tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT_S,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_S)
        with client:
            if self.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if self.username is not None:
                client.login(self.username, self.password)
            client.send_message(message)
        return "sent"


def mailer_for(settings: Settings) -> Mailer:
    """Through SMTP when SEARCH_PARTY_SMTP_HOST is set, otherwise to the log."""
    return SmtpMailer(settings) if settings.smtp_host else LogMailer()


def _permanent(exc: Exception) -> bool:
    """Whether the SMTP server refused the message for good (a 5xx answer): retrying cannot help."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


def deliver_pending(db: Database, mailer: Mailer, limit: int = 100,
                    now: datetime | None = None) -> dict[str, int]:
    """E-mail up to ``limit`` inbox messages not yet e-mailed whose next try is due.  Returns
    counts per outcome: sent, logged, retrying (failed now, tried again later), failed (for good)."""
    now = now or utcnow()
    counts = {"sent": 0, "logged": 0, "retrying": 0, "failed": 0}
    rows = db.execute(
        "SELECT n.id, n.subject, n.body, u.email FROM notifications n JOIN users u ON u.id = n.user_id "
        "WHERE n.email_status = 'pending' AND (n.email_next_try IS NULL OR n.email_next_try <= ?) "
        "ORDER BY n.id LIMIT ?", [to_db_time(now), limit]).fetchall()
    for notification_id, subject, body, email in rows:
        # Claim first: a second deliverer running now skips it (at most one e-mail per try).
        with write_transaction(db):
            claimed = db.execute("UPDATE notifications SET email_status = 'failed', "
                                 "email_attempts = email_attempts + 1 "
                                 "WHERE id = ? AND email_status = 'pending'", [notification_id]).rowcount
            attempts = db.execute("SELECT email_attempts FROM notifications WHERE id = ?",
                                  [notification_id]).fetchone()[0]
        if not claimed:
            continue
        try:
            status = mailer.send(email, subject, body)
        except (OSError, smtplib.SMTPException) as exc:
            if _permanent(exc) or attempts >= MAX_EMAIL_ATTEMPTS:
                log.warning("e-mail for notification %d failed for good (try %d): %s",
                            notification_id, attempts, exc)
                counts["failed"] += 1
                continue
            again = now + RETRY_DELAYS[attempts - 1]
            log.warning("e-mail for notification %d failed (try %d), trying again at %s: %s",
                        notification_id, attempts, to_db_time(again), exc)
            with write_transaction(db):
                db.execute("UPDATE notifications SET email_status = 'pending', email_next_try = ? "
                           "WHERE id = ?", [to_db_time(again), notification_id])
            counts["retrying"] += 1
            continue
        with write_transaction(db):
            db.execute("UPDATE notifications SET email_status = ? WHERE id = ?", [status, notification_id])
        counts[status] += 1
    return counts
