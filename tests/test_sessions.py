"""Sessions end on the server: deleting an account, or a password reset, signs out every device
(each session carries the account's session key, web/access.py), and a deleted account's id is
never given to the next account (schema 8), so a session left open can never become someone
else's.  Real app, real SQLite, several browsers as separate test clients."""

from __future__ import annotations

from datetime import timedelta

from web_helpers import PASSWORD, db_of, post, sign_in

from search_party.community import accounts, limits
from search_party.store.db import open_db, utcnow, write_transaction


def _signed_in_as(client) -> str | None:
    """The e-mail the account page shows, or None when the client is signed out."""
    page = client.get("/account")
    if page.status_code != 200:
        return None
    with_email = page.get_data(as_text=True).split("E-mail (never shown to others)</dt><dd>", 1)[1]
    return with_email.split("<", 1)[0]


def test_deleting_an_account_signs_out_every_device_and_its_id_goes_to_nobody(app, signed_in):
    """Tried: an account signed in on a phone and a laptop deletes itself from the laptop, then a
    stranger signs up (before, the stranger got the deleted id and the phone became them)."""
    phone = signed_in("leaving@example.org")
    laptop = app.test_client()
    assert sign_in(laptop, "leaving@example.org").status_code == 302
    with db_of(app) as db:
        old_id = accounts.find_account(db, "leaving@example.org").id
    assert post(laptop, "/account/delete", {"password": PASSWORD, "understood": "y"}).status_code == 302
    stranger = app.test_client()
    made = post(stranger, "/signup", {"email": "stranger@example.org", "password": PASSWORD,
                                      "confirm": PASSWORD})
    assert made.status_code == 302
    with db_of(app) as db:
        assert accounts.find_account(db, "stranger@example.org").id > old_id
    assert _signed_in_as(phone) is None and _signed_in_as(laptop) is None
    assert phone.get("/cameras").status_code == 302  # sent to sign in
    assert _signed_in_as(stranger) == "stranger@example.org"


def test_a_password_reset_signs_out_every_device(app, signed_in):
    """Tried: someone who knew the old password is signed in on another device when the owner
    resets it; that device is signed out at its next request, and the old session cookie stays
    useless after the owner signs in again."""
    intruder = signed_in("owner@example.org")
    owner = app.test_client()
    assert sign_in(owner, "owner@example.org").status_code == 302
    kept_cookie = intruder.get_cookie("session")
    assert kept_cookie is not None
    with db_of(app) as db:
        token = accounts.start_password_reset(db, "owner@example.org")
    new_password = "a brand new passphrase"
    assert post(app.test_client(), f"/reset/{token}", {"password": new_password,
                                                        "confirm": new_password}).status_code == 302
    assert _signed_in_as(intruder) is None and _signed_in_as(owner) is None
    assert sign_in(owner, "owner@example.org", new_password).status_code == 302
    assert _signed_in_as(owner) == "owner@example.org"
    replay = app.test_client()
    replay.set_cookie("session", kept_cookie.value)
    assert _signed_in_as(replay) is None


def test_an_operator_setting_a_password_signs_out_every_device(app, signed_in, runner):
    """Tried: `search-party user password` (the way to help a user when no SMTP is set up)."""
    device = signed_in("helped@example.org")
    runner("user", "password", "helped@example.org", input="an operator's passphrase\n")
    assert _signed_in_as(device) is None
    assert sign_in(app.test_client(), "helped@example.org", "an operator's passphrase").status_code == 302


def test_a_session_cookie_from_before_session_keys_is_signed_out(app, signed_in):
    """Tried: a cookie that names only the account id (as every session did before schema 8)."""
    client = signed_in("early@example.org")
    with db_of(app) as db:
        user_id = accounts.find_account(db, "early@example.org").id
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
    assert _signed_in_as(client) is None


def test_deleting_an_account_does_not_give_back_the_days_searches(tmp_path):
    """Tried: three searches, delete the account, sign up again with the same address (in other
    letter case): the fourth search of the day is still refused, and an hour after the day it is
    allowed again."""
    with open_db(tmp_path / "sp.db") as db:
        now = utcnow()
        first = accounts.create_user(db, "busy@example.org", PASSWORD)
        for _ in range(limits.SEARCHES_PER_DAY):
            with write_transaction(db):
                limits.take(db, first.id, limits.SEARCH, now)
        accounts.delete_account(db, first.id)
        again = accounts.create_user(db, "Busy@Example.org", PASSWORD)
        try:
            limits.check(db, again.id, limits.SEARCH, now + timedelta(minutes=5))
        except limits.RateLimited as refused:
            assert "24 hours" in str(refused)
        else:
            raise AssertionError("a deleted account gave its searches back")
        limits.check(db, again.id, limits.SEARCH, now + limits.WINDOW + timedelta(hours=1))
        with write_transaction(db):
            limits.take(db, again.id, limits.SEARCH, now + limits.WINDOW + timedelta(hours=1))
        assert db.table("erased_rate_events").count == 0  # pruned once they can no longer count
