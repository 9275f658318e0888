"""The demo's password is published, so the demo stays a local trial: `serve --demo` refuses any
bind but loopback and any proxy in front, `search-party demo` refuses a data folder that holds
real accounts, nobody can sign in as its admin, and `serve` refuses to put a database holding the
demo's accounts anywhere but 127.0.0.1.  Real CLI, real SQLite (the full seed with the real models
runs in tests/test_web_owner.py::test_the_demo_shows_a_newcomer_a_real_match)."""

from __future__ import annotations

import pytest

from search_party.community import accounts
from search_party.errors import UserError
from search_party.measure import demo
from search_party.store.db import open_db


def _refused(result, words: str) -> None:
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, UserError) and words in str(result.exception), result.exception


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_serve_demo_refuses_a_bind_anyone_else_can_reach(runner, settings, host):
    """Tried: --demo on every address, on a LAN address and on IPv6's every address."""
    _refused(runner("serve", "--demo", "--host", host, "--port", "8999", ok=False), "only served on 127.0.0.1")
    with open_db(settings.db_path) as db:
        assert not demo.holds_demo_accounts(db)  # nothing was seeded


def test_serve_demo_refuses_a_loopback_bind_behind_a_proxy(runner, settings, monkeypatch):
    """Tried: --demo on 127.0.0.1 with nginx in front (trusted proxies and a public address)."""
    monkeypatch.setenv("SEARCH_PARTY_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("SEARCH_PARTY_PUBLIC_URL", "https://search-party.example.org")
    _refused(runner("serve", "--demo", "--port", "8999", ok=False), "without a proxy")
    monkeypatch.delenv("SEARCH_PARTY_TRUSTED_PROXIES")
    _refused(runner("serve", "--demo", "--port", "8999", ok=False), "without a proxy")  # a public address alone


def test_the_demo_refuses_a_data_folder_with_real_accounts(runner, settings):
    """Tried: `search-party demo` on a data folder where a neighbour already signed up."""
    with open_db(settings.db_path) as db:
        accounts.create_user(db, "real.neighbour@example.org", "a real person's passphrase")
    _refused(runner("demo", ok=False), "not the demo's")
    with open_db(settings.db_path) as db:
        assert not demo.holds_demo_accounts(db) and db.table("users").count == 1


def test_a_database_with_the_demos_accounts_is_never_served_beyond_loopback(runner, settings):
    """Tried: the demo seeded, then `serve --host 0.0.0.0` (without --demo) on the same folder.
    The seed here is the demo's accounts alone, as seed() makes them."""
    with open_db(settings.db_path) as db:
        accounts.create_user(db, demo.ACCOUNTS[0].email, demo.PASSWORD)
    _refused(runner("serve", "--host", "0.0.0.0", "--port", "8999", ok=False), "holds the demo's accounts")


def test_nobody_can_sign_in_as_the_demo_admin(runner, settings):
    """The seed through the CLI with the real models; then the admin is tried with the published
    password and with an empty one.  It still approved the shelter."""
    seeded = runner("demo")
    assert "admin@demo.example" not in seeded.output and "alex@demo.example" in seeded.output
    with open_db(settings.db_path) as db:
        admin = accounts.find_account(db, "admin@demo.example")
        assert admin is not None and admin.role == "admin" and not admin.has_password
        assert accounts.authenticate(db, "admin@demo.example", demo.PASSWORD) is None
        assert accounts.authenticate(db, "admin@demo.example", "") is None
        assert accounts.approved_shelter(db, accounts.find_account(db, demo.ACCOUNTS[3].email).id)
