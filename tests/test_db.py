"""The database file: migrations, connection settings, time format (real SQLite files in tmp_path)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from search_party.errors import UserError
from search_party.store import db as dbm

TABLES = {"schema_version", "users", "cameras", "clips", "sightings", "sighting_crops"}


def test_migrations_build_every_table_on_an_empty_database(tmp_path):
    db = dbm.open_db(tmp_path / "sp.db")
    assert set(db.table_names()) >= TABLES
    assert dbm.schema_version(db) == dbm.MIGRATIONS[-1].version
    rows = list(db.query("SELECT version, name FROM schema_version ORDER BY version"))
    assert [r["version"] for r in rows] == [m.version for m in dbm.MIGRATIONS]


def test_migrations_are_idempotent(tmp_path):
    path = tmp_path / "sp.db"
    first = dbm.open_db(path)
    schema = first.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert dbm.apply_migrations(first) == []
    first.close()
    again = dbm.open_db(path)
    assert dbm.apply_migrations(again) == []
    assert again.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert again.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(dbm.MIGRATIONS)


def test_two_processes_migrating_at_once_apply_each_migration_once(tmp_path):
    """Tried: the worker and the web app starting together on a new data folder."""
    path = tmp_path / "sp.db"
    code = f"from search_party.store.db import open_db; open_db({str(path)!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    db = dbm.open_db(path)
    assert db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(dbm.MIGRATIONS)


def test_every_connection_uses_wal_foreign_keys_and_a_busy_timeout(tmp_path):
    db = dbm.open_db(tmp_path / "sp.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == dbm.BUSY_TIMEOUT_MS
    with pytest.raises(sqlite3.IntegrityError):  # tried: a camera whose owner does not exist
        db.execute("INSERT INTO cameras (owner_id, lat, lon, retention_days, created) "
                   "VALUES (999, 0, 0, 30, 'x')")


def test_a_newer_database_is_refused_with_a_clear_message(tmp_path):
    """Tried: an older Search Party opening a database a newer one migrated."""
    db = dbm.open_db(tmp_path / "sp.db")
    db.table("schema_version").insert({"version": 999, "name": "future", "applied": "x"})
    with pytest.raises(UserError, match="newer than this code"):
        dbm.open_db(tmp_path / "sp.db")


def test_a_file_that_is_not_a_database_is_refused_with_a_clear_message(tmp_path):
    """Tried: SEARCH_PARTY_DB pointing at a text file."""
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(UserError, match="is it a Search Party database"):
        dbm.open_db(path)


def test_a_failed_write_transaction_leaves_nothing(tmp_path):
    db = dbm.open_db(tmp_path / "sp.db")
    with pytest.raises(RuntimeError), dbm.write_transaction(db):
        db.table("users").insert({"email": "a@example.org", "role": "resident", "created": "x"})
        raise RuntimeError("crash in the middle")
    assert db.table("users").count == 0


def test_times_are_stored_as_sortable_utc_text():
    local = datetime(2025, 6, 1, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    text = dbm.to_db_time(local)
    assert text == "2025-06-01T08:30:00.000000Z"
    assert dbm.from_db_time(text) == local
    later = dbm.to_db_time(local + timedelta(microseconds=1))
    assert later > text
    with pytest.raises(ValueError, match="no timezone"):  # tried: a naive datetime
        dbm.to_db_time(datetime(2025, 6, 1, 10, 30))
