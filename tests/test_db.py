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


def _schema_7_database(path):
    """A database as schema 7 left it, with an account of every kind and rows that point at them."""
    db = dbm.open_db(path, migrate=False)
    dbm.apply_migrations(db, [m for m in dbm.MIGRATIONS if m.version <= 7])
    t = "2025-06-01T08:00:00.000000Z"
    for n, (email, role) in enumerate([("a@example.org", "resident"), ("s@example.org", "shelter"),
                                       ("z@example.org", "resident")], start=1):
        db.execute("INSERT INTO users (id, email, role, created, display_name) VALUES (?, ?, ?, ?, ?)",
                   [n, email, role, t, email[0]])
    db.execute("INSERT INTO shelters (user_id, name, lat, lon, service_radius_m, created) "
               "VALUES (2, 'Rescue', 51.5, -0.1, 5000, ?)", [t])
    db.execute("INSERT INTO cameras (owner_id, lat, lon, retention_days, created) VALUES (3, 51.5, -0.1, 30, ?)", [t])
    db.execute("INSERT INTO lost_reports (owner_id, pet_name, species, lat, lon, last_seen, radius_m, expires, "
               "submission_key, created, updated) VALUES (1, 'Rex', 'dog', 51.5, -0.1, ?, 1000, ?, 'k', ?, ?)",
               [t, t, t, t])
    db.execute("INSERT INTO rate_events (user_id, kind, at) VALUES (1, 'search', ?)", [t])
    db.conn.commit()
    return db


def test_schema_8_rebuilds_users_keeping_every_row_that_points_at_them(tmp_path):
    """Tried: an older database with accounts, a shelter, a camera, a report and a rate event:
    the rebuild keeps every row and id, keys stay enforced and cascading, each account gets its
    own session key, and the highest id, once deleted, is never given out again."""
    path = tmp_path / "old.db"
    old = _schema_7_database(path)
    before = {t: old.table(t).count for t in ("users", "shelters", "cameras", "lost_reports", "rate_events")}
    old.close()
    db = dbm.open_db(path)
    assert dbm.schema_version(db) == dbm.MIGRATIONS[-1].version
    assert {t: db.table(t).count for t in before} == before
    assert [r[0] for r in db.execute("SELECT id FROM users ORDER BY id")] == [1, 2, 3]
    keys = [r[0] for r in db.execute("SELECT session_key FROM users")]
    assert len(set(keys)) == 3 and all(len(k) == 32 for k in keys)
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    with pytest.raises(sqlite3.IntegrityError):  # tried: a camera whose owner does not exist
        db.execute("INSERT INTO cameras (owner_id, lat, lon, retention_days, created) VALUES (99, 0, 0, 30, 'x')")
    db.execute("DELETE FROM users WHERE id = 3")
    assert db.table("cameras").count == 0  # the deleted owner's camera went with it
    new_id = db.table("users").insert({"email": "next@example.org", "created": "x"}).last_pk
    assert new_id == 4  # not 3: ids are never reused


def test_a_migration_that_fails_half_way_changes_nothing(tmp_path):
    """sqlite-utils 4 runs a migration's script inside its transaction (3.x committed before the
    script, so a failure left half a migration behind).  Tried: a new table, then an error."""
    db = dbm.open_db(tmp_path / "sp.db")
    broken = dbm.Migration(dbm.MIGRATIONS[-1].version + 1, "broken", """
        CREATE TABLE half_made (x INTEGER);
        INSERT INTO no_such_table VALUES (1);
    """)
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        dbm.apply_migrations(db, [*dbm.MIGRATIONS, broken])
    assert "half_made" not in db.table_names()
    assert dbm.schema_version(db) == dbm.MIGRATIONS[-1].version
