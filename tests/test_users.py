"""Accounts on a real SQLite file: roles, Argon2 passwords, shelter approval, password reset, and
the inbox with e-mail through a real SMTP server on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from servers import free_port, smtp_server

from search_party.community import accounts, notifications
from search_party.config import load_settings
from search_party.errors import Forbidden, UserError
from search_party.store.db import open_db, utcnow, write_transaction

PASSWORD = "correct horse battery"


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "sp.db")


def test_a_password_is_stored_only_as_an_argon2id_hash_and_checked(db):
    account = accounts.create_user(db, "ann@example.org", PASSWORD, display_name="Ann")
    stored = db.execute("SELECT password_hash FROM users WHERE id = ?", [account.id]).fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.authenticate(db, "ANN@example.org ", PASSWORD).id == account.id  # email is case-blind
    assert accounts.authenticate(db, "ann@example.org", PASSWORD + "!") is None  # tried: wrong password
    assert accounts.authenticate(db, "nobody@example.org", PASSWORD) is None  # tried: unknown email
    cli_only = accounts.create_user(db, "cli@example.org")  # tried: signing in to a password-less account
    assert accounts.authenticate(db, cli_only.email, "") is None


def test_bad_account_input_is_refused(db):
    with pytest.raises(UserError, match="at least 10"):  # tried: a 5-character password
        accounts.create_user(db, "a@example.org", "short")
    with pytest.raises(UserError, match="not an email"):  # tried: no domain
        accounts.create_user(db, "ann@localhost", PASSWORD)
    with pytest.raises(UserError, match="residents and admins only"):  # tried: shelter via signup
        accounts.create_user(db, "s@example.org", role="shelter")
    with pytest.raises(UserError, match="'@'"):  # tried: an email as the public display name
        accounts.create_user(db, "b@example.org", display_name="me@example.org")
    accounts.create_user(db, "c@example.org")
    with pytest.raises(UserError, match="already exists"):  # tried: the same email twice
        accounts.create_user(db, "C@example.org")


def test_a_shelter_acts_as_one_only_after_an_admin_approves_it(db):
    shelter = accounts.register_shelter(db, "desk@shelter.example", None, name="Northside Shelter",
                                     lat=51.5, lon=-0.12, service_radius_m=20_000)
    assert not shelter.approved
    with pytest.raises(Forbidden, match="waiting"):
        accounts.approved_shelter(db, shelter.user_id)
    resident = accounts.create_user(db, "res@example.org")
    with pytest.raises(Forbidden, match="admin"):  # tried: a resident approving a shelter
        accounts.approve_shelter(db, shelter.user_id, resident.id)
    admin = accounts.create_user(db, "admin@example.org", role="admin")
    assert [s.user_id for s in accounts.list_shelters(db, pending_only=True)] == [shelter.user_id]
    first = accounts.approve_shelter(db, shelter.user_id, admin.id)
    again = accounts.approve_shelter(db, shelter.user_id, admin.id)  # tried: approving twice
    assert first.approved and again.approved_at == first.approved_at
    assert accounts.approved_shelter(db, shelter.user_id).name == "Northside Shelter"
    with pytest.raises(Forbidden, match="only a shelter"):
        accounts.approved_shelter(db, resident.id)
    with pytest.raises(UserError, match="service area"):  # tried: a 500 km service area
        accounts.register_shelter(db, "big@shelter.example", None, name="Big", lat=0, lon=0,
                               service_radius_m=500_000)


def test_a_password_reset_token_works_once_and_expires(db):
    account = accounts.create_user(db, "ann@example.org")
    assert accounts.start_password_reset(db, "nobody@example.org") is None
    token = accounts.start_password_reset(db, "ann@example.org")
    stored = db.execute("SELECT token_sha256 FROM password_resets").fetchone()[0]
    assert token not in stored  # only its hash is kept
    accounts.reset_password(db, token, PASSWORD)
    assert accounts.authenticate(db, account.email, PASSWORD).id == account.id
    with pytest.raises(UserError, match="invalid or has expired"):  # tried: the same token again
        accounts.reset_password(db, token, PASSWORD)
    late = accounts.start_password_reset(db, "ann@example.org", now=utcnow() - timedelta(hours=2))
    with pytest.raises(UserError, match="invalid or has expired"):  # tried: a token 2 hours old
        accounts.reset_password(db, late, PASSWORD)


def test_the_inbox_holds_messages_and_only_the_owner_marks_them_read(db):
    ann = accounts.create_user(db, "ann@example.org")
    bob = accounts.create_user(db, "bob@example.org")
    with write_transaction(db):
        note = notifications.notify(db, ann.id, "test", "Hello", "A body")
    assert [n.id for n in notifications.inbox(db, ann.id)] == [note]
    assert notifications.inbox(db, bob.id) == []
    notifications.mark_read(db, bob.id, note)  # tried: someone else marking it read
    assert notifications.unread_count(db, ann.id) == 1
    notifications.mark_read(db, ann.id, note)
    assert notifications.unread_count(db, ann.id) == 0


def test_email_goes_through_smtp_once_when_configured_and_to_the_log_otherwise(db, caplog, monkeypatch):
    ann = accounts.create_user(db, "ann@example.org")
    with write_transaction(db):
        notifications.notify(db, ann.id, "test", "Could this be Max?", "Open Search Party.")
    with smtp_server() as server:
        mailer = notifications.mailer_for(load_settings(**server.settings()))
        assert notifications.deliver_pending(db, mailer) == {"sent": 1, "logged": 0, "retrying": 0, "failed": 0}
        assert notifications.deliver_pending(db, mailer)["sent"] == 0  # tried: delivering twice
    assert len(server.messages) == 1
    assert server.messages[0]["To"] == "ann@example.org"
    assert server.messages[0]["Subject"] == "Could this be Max?"
    with write_transaction(db):
        notifications.notify(db, ann.id, "test", "Second", "Body two")
    with caplog.at_level("INFO"):
        counts = notifications.deliver_pending(db, notifications.mailer_for(load_settings(smtp_host=None)))
    assert counts["logged"] == 1 and "Second" in caplog.text
    monkeypatch.setenv("SEARCH_PARTY_SMTP_HOST", "h")
    monkeypatch.setenv("SEARCH_PARTY_SMTP_TLS", "x")
    with pytest.raises(UserError, match="SMTP_TLS"):  # tried: an unknown TLS mode
        load_settings()
    monkeypatch.setenv("SEARCH_PARTY_SMTP_TLS", "none")
    monkeypatch.setenv("SEARCH_PARTY_SMTP_PORT", "70000")
    with pytest.raises(UserError, match="port number"):  # tried: port 70000
        load_settings()


def test_an_unreachable_smtp_server_is_retried_then_the_email_is_marked_failed_and_the_inbox_kept(db):
    ann = accounts.create_user(db, "ann@example.org")
    with write_transaction(db):
        notifications.notify(db, ann.id, "test", "Hello", "Body")
    unreachable = notifications.mailer_for(load_settings(smtp_host="127.0.0.1", smtp_port=free_port(),
                                                         smtp_tls="none"))
    # Tried: a port nothing listens on, every time the message is due, until the attempts run out.
    now = utcnow()
    for attempt in range(1, notifications.MAX_EMAIL_ATTEMPTS + 1):
        counts = notifications.deliver_pending(db, unreachable, now=now)
        assert counts == {"sent": 0, "logged": 0, "retrying": int(attempt < notifications.MAX_EMAIL_ATTEMPTS),
                          "failed": int(attempt == notifications.MAX_EMAIL_ATTEMPTS)}
        now += notifications.RETRY_DELAYS[min(attempt, len(notifications.RETRY_DELAYS)) - 1]
    (kept,) = notifications.inbox(db, ann.id)
    assert kept.email_status == "failed"
    assert sum(notifications.deliver_pending(db, unreachable, now=now + timedelta(days=1)).values()) == 0
