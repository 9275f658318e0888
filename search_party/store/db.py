"""The SQLite database: how it is opened and migrated (the schema is store/migrations.py), how one
write is made atomic, and its time format.

SQLite is the source of truth (vectors included); everything else (the FAISS index, the job
queue) can be rebuilt from it.  Every connection runs in WAL mode, so a reader never waits for the
worker's writes and a process killed mid-write leaves only an uncommitted tail that SQLite throws
away.  ``synchronous=NORMAL`` is enough in WAL mode: an application crash never loses a commit;
a power cut may lose the last few, which only puts clips back to an earlier status, and the worker
re-queues them on its next start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from search_party.errors import UserError
from search_party.store.migrations import MIGRATIONS, Migration

BUSY_TIMEOUT_MS = 15_000
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so text order is time order in SQL


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db_time(moment: datetime) -> str:
    """A timezone-aware datetime as fixed-width UTC text; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no timezone; every stored time is an instant in UTC")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def from_db_time(text: str) -> datetime:
    """The aware UTC datetime of a stored time (``to_db_time``'s text): fromisoformat reads the
    trailing Z as UTC, identically to strptime with TIME_FORMAT and ~10x faster."""
    return datetime.fromisoformat(text)


def open_db(path: Path | str, migrate: bool = True) -> Database:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot open the database {path}: {exc}; is it a Search Party database?") from None
    except OSError as exc:
        raise UserError(f"cannot create the database folder {path.parent}: {exc.strerror}") from None
    db = Database(conn)
    if migrate:
        apply_migrations(db)
    return db


def sql_name(name: str, allowed: Collection[str]) -> str:
    """``name`` (a table, a column or a named condition) for SQL text, if it is one of ``allowed``.
    Values always travel as parameters; the few names a function takes as an argument are checked
    here, so no caller, however it is reached, can turn an argument into SQL."""
    if name not in allowed:
        raise ValueError(f"{name!r} is not one of {', '.join(sorted(allowed))}")
    return name


def insert_row(db: Database, table: str, row: dict[str, Any]) -> int:
    """Insert one row (inside the caller's write transaction) and return its id."""
    row_id = db.table(table).insert(row).last_pk
    assert isinstance(row_id, int), f"{table} has no integer id"
    return row_id


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """One atomic write: ``BEGIN IMMEDIATE`` takes the write lock up front (waiting up to the busy
    timeout), so two writers queue instead of one failing half-way on a lock upgrade."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.execute("COMMIT")


def schema_version(db: Database) -> int:
    if "schema_version" not in db.table_names():
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return row[0] or 0


def apply_migrations(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply every migration newer than the database, each in its own transaction (all of it or
    none of it: sqlite-utils 4 runs a script inside the open transaction, never committing half);
    returns the versions applied (none when already current, so running it again is harmless).
    ``migrations`` is the schema's list; a test may stop it early to make an older database."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"
    )
    latest = MIGRATIONS[-1].version
    current = schema_version(db)
    if current > latest:
        raise UserError(
            f"the database is at schema version {current}, newer than this code ({latest}); "
            "upgrade Search Party before using this database"
        )
    applied = []
    for migration in migrations:
        if migration.version <= current:
            continue
        if _apply(db, migration):
            applied.append(migration.version)
    return applied


def _apply(db: Database, migration: Migration) -> bool:
    """One migration in one write transaction; False when another process applied it first."""
    if migration.rebuilds_tables:
        # Only outside a transaction does this pragma take effect; dropping a rebuilt table with
        # foreign keys on would delete its children's rows.
        db.conn.execute("PRAGMA foreign_keys = OFF")
    try:
        with write_transaction(db):
            # Another process may have migrated while we waited for the write lock.
            if schema_version(db) >= migration.version:
                return False
            db.executescript(migration.sql)
            if migration.rebuilds_tables:
                broken = db.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise UserError(f"schema migration {migration.version} ({migration.name}) would leave "
                                    f"{len(broken)} row(s) pointing at nothing (first: {tuple(broken[0])}); "
                                    "nothing was changed")
            db.table("schema_version").insert(
                {"version": migration.version, "name": migration.name, "applied": to_db_time(utcnow())}
            )
    finally:
        if migration.rebuilds_tables:
            db.conn.execute("PRAGMA foreign_keys = ON")
    return True
