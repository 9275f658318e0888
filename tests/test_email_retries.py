"""A failed e-mail is tried again with back-off, a bounded number of times, against a real SMTP
server on 127.0.0.1 (aiosmtpd) that is first down, then busy (451), then delivers; a message the
server refuses for good (550) is not retried.  Real SQLite; "now" is passed in, never waited for."""

from __future__ import annotations

import socket

from aiosmtpd.controller import Controller

from search_party.community import accounts, notifications
from search_party.config import load_settings
from search_party.store.db import utcnow, write_transaction


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Flaky:
    """An SMTP handler that answers ``failures`` messages with ``answer``, then accepts them."""

    def __init__(self, failures: int, answer: str) -> None:
        self.failures, self.answer = failures, answer
        self.tries = 0
        self.delivered: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.tries += 1
        if self.tries <= self.failures:
            return self.answer
        self.delivered.append(envelope.content)
        return "250 OK"


def _one_message(db) -> int:
    ann = accounts.create_user(db, "ann@example.org")
    with write_transaction(db):
        notifications.notify(db, ann.id, "consent_request", "Could this be Max?", "Open Search Party.")
    return ann.id


def _status(db) -> tuple[str, int]:
    return db.execute("SELECT email_status, email_attempts FROM notifications").fetchone()


def test_an_email_is_retried_with_back_off_while_the_server_is_down_or_busy_then_sent_once(db):
    _one_message(db)
    port = _free_port()
    mailer = notifications.mailer_for(load_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none",
                                                    smtp_from="sp@example.org"))
    now = utcnow()
    # Tried: the server down (nothing listens on its port).
    assert notifications.deliver_pending(db, mailer, now=now)["retrying"] == 1
    assert _status(db) == ("pending", 1)
    handler = Flaky(failures=1, answer="451 4.3.0 try again later")
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    try:
        # Not due yet: the first pause is RETRY_DELAYS[0], so nothing is tried before it ends.
        early = now + notifications.RETRY_DELAYS[0] / 2
        assert sum(notifications.deliver_pending(db, mailer, now=early).values()) == 0
        assert handler.tries == 0
        # Tried: the server up but busy (451), then the second, longer pause, then delivered.
        now += notifications.RETRY_DELAYS[0]
        assert notifications.deliver_pending(db, mailer, now=now)["retrying"] == 1
        assert _status(db) == ("pending", 2) and handler.tries == 1
        assert sum(notifications.deliver_pending(db, mailer, now=now + notifications.RETRY_DELAYS[0]).values()) == 0
        now += notifications.RETRY_DELAYS[1]
        assert notifications.deliver_pending(db, mailer, now=now) == {"sent": 1, "logged": 0, "retrying": 0,
                                                                      "failed": 0}
        assert sum(notifications.deliver_pending(db, mailer, now=now + notifications.RETRY_DELAYS[-1]).values()) == 0
    finally:
        server.stop()
    assert _status(db) == ("sent", 3)
    assert len(handler.delivered) == 1 and b"Could this be Max?" in handler.delivered[0]


def test_an_email_the_server_refuses_for_good_is_not_retried(db):
    user_id = _one_message(db)
    handler = Flaky(failures=10, answer="550 5.1.1 no such mailbox")
    port = _free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    try:
        mailer = notifications.mailer_for(load_settings(smtp_host="127.0.0.1", smtp_port=port,
                                                        smtp_tls="none"))
        now = utcnow()
        assert notifications.deliver_pending(db, mailer, now=now)["failed"] == 1  # tried: a 550
        later = now + sum(notifications.RETRY_DELAYS, notifications.RETRY_DELAYS[0])
        assert sum(notifications.deliver_pending(db, mailer, now=later).values()) == 0
    finally:
        server.stop()
    assert handler.tries == 1 and _status(db) == ("failed", 1)
    (kept,) = notifications.inbox(db, user_id)  # the message itself is still in the inbox
    assert kept.subject == "Could this be Max?"
