"""`search-party backup` / `restore` (search_party.store.backup) on a real database: real users, cameras,
fixture-dog sightings with their vectors, a lost report made from real photos by the real models,
and a consent request; backed up, changed, restored, and compared row by row."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from domain_world import (
    LAST_SEEN,
    LAST_SEEN_POINT,
    LOST_DOG,
    LOST_DOG_PHOTOS,
    NOW,
    camera,
    dog_photos,
    models,
    open_index,
    place,
    settings_for,
    store_sightings,
)
from sighting_drafts import SHIPPED_EMBEDDER

from search_party.community import accounts, cameras, reports, standing_searches
from search_party.errors import UserError
from search_party.store import backup as backups
from search_party.store.db import open_db
from search_party.store.migrations import MIGRATIONS


def snapshot(db_path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, in rowid order (the comparison a restore must pass)."""
    with closing(sqlite3.connect(db_path)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A live instance with cameras, sightings, a lost report, its search and a consent request."""
    settings = settings_for(tmp_path_factory.mktemp("template") / "live")
    with open_db(settings.db_path) as db:
        near = camera(db, "near@example.org", place(90, 300))
        store_sightings(db, near, [(LOST_DOG, 1), (LOST_DOG, 6), ("177", 1)])
        owner = accounts.create_user(db, "owner@example.org")
        report, _ = reports.create_lost_report(
            db, owner.id, pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)),
            lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW, **models())
        run = standing_searches.search_report(db, report.id, open_index(db, settings.data_dir), now=NOW)
        assert run.asked, "the world needs a consent request to back up"
    return settings


@pytest.fixture
def world(template, tmp_path):
    """A copy of the template instance for one test (its connections are closed, so the
    database is one file)."""
    shutil.copytree(template.data_dir, tmp_path / "live", symlinks=True)
    return settings_for(tmp_path / "live")


def run_cli(settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "SEARCH_PARTY_DATA_DIR": str(settings.data_dir), "SEARCH_PARTY_EMBEDDER": SHIPPED_EMBEDDER}
    return subprocess.run([sys.executable, "-m", "search_party.cli", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=120)


def search_results(settings) -> list[tuple[int, float]]:
    """What the index answers for the lost dog's photos, as (sighting id, score) rows."""
    with open_db(settings.db_path) as db:
        index = open_index(db, settings.data_dir)
        query = reports.report_query(db, 1, index.model_version)
        assert query is not None
        scores, ids = index.search(query.vector, 5)
    return [(int(i), round(float(s), 5)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def test_backup_then_restore_gives_back_every_row_and_the_same_search_results(world, tmp_path):
    before = snapshot(world.db_path)
    results_before = search_results(world)
    done = run_cli(world, "backup", str(tmp_path / "nightly.db"))
    assert done.returncode == 0, done.stderr
    assert "3 sightings" in done.stdout and "1 lost reports" in done.stdout
    assert snapshot(tmp_path / "nightly.db") == before

    # Life goes on: a camera opts out (its sightings and the request go), a user joins.
    with open_db(world.db_path) as db:
        cameras.opt_out(db, 1, cameras.get_camera(db, 1).owner_id, world.index_path)
        accounts.create_user(db, "late@example.org")
        store_sightings(db, camera(db, "other@example.org", place(0, 200)), [("182", 1)])
    assert snapshot(world.db_path) != before

    done = run_cli(world, "restore", str(tmp_path / "nightly.db"), "--yes")
    assert done.returncode == 0, done.stderr
    assert "index rebuilt with 3 vectors" in done.stdout
    assert snapshot(world.db_path) == before
    assert search_results(world) == results_before


def test_a_reader_open_during_the_restore_sees_the_restored_database(world, tmp_path):
    """The server keeps its connection: after the restore it reads the restored rows, not a mix
    with the old write-ahead log."""
    backups.backup(world.db_path, tmp_path / "b.db")
    with open_db(world.db_path) as server:
        accounts.create_user(server, "gone@example.org")
        assert server.execute("SELECT count(*) FROM users WHERE email = 'gone@example.org'").fetchone()[0] == 1
        backups.restore(tmp_path / "b.db", world)
        assert server.execute("SELECT count(*) FROM users WHERE email = 'gone@example.org'").fetchone()[0] == 0
        assert server.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert snapshot(world.db_path) == snapshot(tmp_path / "b.db")


def test_a_backup_taken_while_another_process_writes_is_consistent(world, tmp_path):
    """Tried: 300 accounts created one transaction at a time by another process during the backup."""
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys; from search_party.store.db import open_db; from search_party.community import accounts\n"
        "db = open_db(sys.argv[1])\n"
        "for i in range(300): accounts.create_user(db, f'w{i}@example.org')\n"), str(world.db_path)])
    copies = []
    try:
        while writer.poll() is None and len(copies) < 20:
            copies.append(backups.backup(world.db_path, tmp_path / f"during-{len(copies)}.db"))
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0 and copies
    for info in copies:
        with closing(sqlite3.connect(info.path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file, no WAL
            emails = [r[0] for r in conn.execute(
                "SELECT email FROM users WHERE email LIKE 'w%@example.org' ORDER BY id")]
        # A prefix of the writer's work: whole transactions, in order, nothing half-written.
        assert emails == [f"w{i}@example.org" for i in range(len(emails))]


def _not_sqlite(path: Path, fixtures: Path) -> None:
    path.write_text("search party backup\n")


def _jpeg(path: Path, fixtures: Path) -> None:
    shutil.copy(fixtures / "images" / "zamba_dog_porch.jpg", path)


def _empty(path: Path, fixtures: Path) -> None:
    path.write_bytes(b"")


def _other_app(path: Path, fixtures: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('hello')")
        conn.commit()


def _from_the_future(path: Path, fixtures: Path) -> None:
    with open_db(path) as db:
        db.execute("INSERT INTO schema_version (version, name, applied) VALUES (99, 'future', 'x')")
        db.conn.commit()


def _missing_tables(path: Path, fixtures: Path) -> None:
    with open_db(path) as db:
        db.execute("DROP TABLE sighting_crops")
        db.conn.commit()


def _truncated(path: Path, fixtures: Path) -> None:
    _good_copy(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_page(path: Path, fixtures: Path) -> None:
    _good_copy(path)
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page: 3 * page + 512] = bytes(range(256)) * 2  # a b-tree page header turned to noise
    path.write_bytes(bytes(data))


def _rows_pointing_at_nothing(path: Path, fixtures: Path) -> None:
    """Whole and undamaged for SQLite's integrity check, but written with foreign keys off: a
    camera whose owner does not exist (before, restore put it live and checked nothing)."""
    with open_db(path) as db:
        db.conn.execute("PRAGMA foreign_keys = OFF")
        db.execute("INSERT INTO cameras (owner_id, lat, lon, retention_days, created) VALUES (999, 0, 0, 30, 'x')")
        db.conn.commit()


def _good_copy(path: Path) -> None:
    live = path.with_name("source.db")
    with open_db(live) as db:
        for n in range(200):
            accounts.create_user(db, f"user{n}@example.org")
    backups.backup(live, path)


BAD_FILES = {"a text file": _not_sqlite, "a JPEG": _jpeg, "an empty file": _empty,
             "another app's SQLite database": _other_app, "a schema from a newer version": _from_the_future,
             "a database missing a core table": _missing_tables, "a backup cut in half": _truncated,
             "a backup with a corrupt page": _corrupt_page,
             "a backup with rows pointing at nothing": _rows_pointing_at_nothing}


@pytest.mark.parametrize("what", sorted(BAD_FILES))
def test_restore_refuses_what_is_not_a_whole_search_party_database(world, tmp_path, fixtures, what):
    """Tried: each file of BAD_FILES as the backup; the live database must be left as it was."""
    bad = tmp_path / "bad" / "backup.db"
    bad.parent.mkdir()
    BAD_FILES[what](bad, fixtures)
    before = snapshot(world.db_path)
    with pytest.raises(UserError) as refused:
        backups.restore(bad, world)
    assert str(bad) in str(refused.value) or "backup" in str(refused.value)
    assert snapshot(world.db_path) == before


def test_the_commands_say_what_is_wrong_in_one_line(world, tmp_path):
    """Tried: restoring a missing file, restoring the live database onto itself, backing up onto an
    existing file without --force, and answering no to the restore question."""
    missing = run_cli(world, "restore", str(tmp_path / "nope.db"), "--yes")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "is not a file" in missing.stderr
    itself = run_cli(world, "restore", str(world.db_path), "--yes")
    assert itself.returncode == 2 and "live database itself" in itself.stderr
    (tmp_path / "taken.db").write_text("keep me")
    taken = run_cli(world, "backup", str(tmp_path / "taken.db"))
    assert taken.returncode == 2 and "--force" in taken.stderr
    assert (tmp_path / "taken.db").read_text() == "keep me"
    folder = run_cli(world, "backup", str(tmp_path))
    assert folder.returncode == 0 and "search_party-" in folder.stdout
    before = hashlib.sha256(world.db_path.read_bytes()).hexdigest()
    no = run_cli(world, "restore", str(next(tmp_path.glob("search_party-*.db"))), stdin="n\n")
    assert no.returncode == 1 and "aborted" in no.stderr
    assert hashlib.sha256(world.db_path.read_bytes()).hexdigest() == before


def test_an_older_backup_is_migrated_to_the_current_schema_on_restore(world, tmp_path):
    """A backup made by an earlier release (schema 2) restores and is brought up to date."""
    old = tmp_path / "old.db"
    with closing(sqlite3.connect(old)) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "applied TEXT NOT NULL)")
        for migration in MIGRATIONS[:2]:
            conn.executescript(migration.sql)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, '2025-01-01T00:00:00.000000Z')",
                         [migration.version, migration.name])
        conn.execute("INSERT INTO users (email, role, created) VALUES ('early@example.org', 'resident', "
                     "'2025-01-01T00:00:00.000000Z')")
        conn.commit()
    result = backups.restore(old, world)
    assert result.restored.schema_version == 2 and result.schema_version == MIGRATIONS[-1].version
    assert result.index_vectors is None  # no sightings: no index to build
    with open_db(world.db_path) as db:
        assert [r[0] for r in db.execute("SELECT email FROM users")] == ["early@example.org"]
        assert "camera_tokens" in db.table_names()
    assert not world.index_path.exists()
