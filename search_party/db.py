"""The SQLite database: how it is opened, its schema as numbered migrations, and its time format.

SQLite is the source of truth (vectors included); everything else (the FAISS index, the job
queue) can be rebuilt from it.  Every connection runs in WAL mode, so a reader never waits for the
worker's writes and a process killed mid-write leaves only an uncommitted tail that SQLite throws
away.  ``synchronous=NORMAL`` is enough in WAL mode: an application crash never loses a commit;
a power cut may lose the last few, which only puts clips back to an earlier status, and the worker
re-queues them on its next start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlite_utils import Database

from search_party.errors import UserError

BUSY_TIMEOUT_MS = 15_000
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so text order is time order in SQL


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


# Append only: a migration that has shipped is never edited, a change is a new migration.
# Clip and sighting ids use AUTOINCREMENT so a deleted id is never reused: the FAISS index and the
# job queue refer to rows by id and must never mistake a new row for a deleted one.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "users, cameras, clips, sightings, sighting crops", """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            role TEXT NOT NULL DEFAULT 'resident' CHECK (role IN ('resident', 'shelter', 'admin')),
            created TEXT NOT NULL
        );
        CREATE TABLE cameras (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL DEFAULT '',
            lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
            lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
            opted_in INTEGER NOT NULL DEFAULT 0 CHECK (opted_in IN (0, 1)),
            opted_in_at TEXT,
            paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
            retention_days INTEGER NOT NULL CHECK (retention_days > 0),
            created TEXT NOT NULL
        );
        CREATE INDEX cameras_owner ON cameras (owner_id);
        CREATE TABLE clips (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id INTEGER NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL,
            filename TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            spool_name TEXT,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'processing', 'done', 'failed')),
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            claimed_at TEXT,
            start_time TEXT,
            start_source TEXT,
            sightings_count INTEGER,
            stats TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            UNIQUE (camera_id, sha256)
        );
        CREATE INDEX clips_status ON clips (status);
        CREATE TABLE sightings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id INTEGER NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
            clip_id INTEGER NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
            label TEXT NOT NULL CHECK (label IN ('dog', 'cat')),
            first_time TEXT NOT NULL,
            last_time TEXT NOT NULL,
            box_x1 REAL NOT NULL,
            box_y1 REAL NOT NULL,
            box_x2 REAL NOT NULL,
            box_y2 REAL NOT NULL,
            score REAL NOT NULL,
            thumbnail BLOB NOT NULL,
            vector BLOB NOT NULL,
            model_version TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX sightings_camera_time ON sightings (camera_id, first_time);
        CREATE INDEX sightings_clip ON sightings (clip_id);
        CREATE INDEX sightings_model ON sightings (model_version);
        CREATE TABLE sighting_crops (
            id INTEGER PRIMARY KEY,
            sighting_id INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
            vector BLOB NOT NULL
        );
        CREATE INDEX sighting_crops_sighting ON sighting_crops (sighting_id);
    """),
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_db_time(moment: datetime) -> str:
    """A timezone-aware datetime as fixed-width UTC text; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no timezone; every stored time is an instant in UTC")
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def from_db_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc)


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


def apply_migrations(db: Database) -> list[int]:
    """Apply every migration newer than the database, each in its own transaction; returns the
    versions applied (none when already current, so running it again is harmless)."""
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
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        with write_transaction(db):
            # Another process may have migrated while we waited for the write lock.
            if schema_version(db) >= migration.version:
                continue
            db.executescript(migration.sql)
            db.table("schema_version").insert(
                {"version": migration.version, "name": migration.name, "applied": to_db_time(utcnow())}
            )
        applied.append(migration.version)
    return applied
