"""Backup and restore of the database: the one file that holds everything (invariant 5 of DESIGN.md).

SQLite is the source of truth, vectors included; the FAISS index is rebuilt from it, the spool
only holds clips still waiting for the worker, and the queue is rebuilt from the clips table.  So a
backup is the database alone, copied with SQLite's online backup API (``sqlite3.Connection.backup``)
while the server and the worker keep running: the copy is one consistent snapshot (in WAL mode a
reader never blocks a writer), written to a temporary file beside the target, checked with
``PRAGMA integrity_check``, made self-contained (rollback journal, not WAL) and renamed into place,
so a half-written backup never carries the target's name.

Restore refuses anything that is not a whole Search Party database (not SQLite, fails the
integrity check, rows pointing at rows that do not exist, no schema version, a schema newer than
this code, a core table missing). A valid file is copied beside the live database, migrated to
the current schema, checked again as it will be restored (integrity and every foreign key: the
live database is never overwritten with something unchecked), then copied *into* the live
database with the same backup API: SQLite writes every page in one transaction on the live file,
so every connection sees the old database or the restored one, never a mix, and a crash
mid-restore leaves the old one. (Renaming a file over a live WAL database would not be safe: the old
``-wal`` file beside it would be replayed onto the new one.) The FAISS index is then rebuilt
from the restored vectors, because sighting ids of the old and the restored database may
coincide for different sightings.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from search_party.config import Settings
from search_party.errors import UserError
from search_party.store.db import open_db, to_db_time, utcnow
from search_party.store.migrations import MIGRATIONS
from search_party.store.vector_index import VectorIndex

SQLITE_HEADER = b"SQLite format 3\x00"
CORE_TABLES = ("schema_version", "users", "cameras", "clips", "sightings", "sighting_crops")
COUNTED_TABLES = ("users", "cameras", "clips", "sightings", "lost_reports", "found_reports", "matches")


@dataclass(frozen=True)
class BackupInfo:
    """What a backup file holds: its schema version and how many rows its main tables have."""

    path: Path
    schema_version: int
    size_bytes: int
    counts: dict[str, int]


@dataclass(frozen=True)
class RestoreResult:
    restored: BackupInfo
    schema_version: int  # of the live database after restoring (migrated if the backup was older)
    index_vectors: int | None  # vectors in the rebuilt index; None when no sighting was restored


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _integrity_problem(conn: sqlite3.Connection) -> str | None:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    return None if rows == ["ok"] else rows[0]


def _foreign_key_problem(conn: sqlite3.Connection) -> str | None:
    """Rows that point at rows that do not exist (a file written with foreign keys off)."""
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if not broken:
        return None
    tables = sorted({row[0] for row in broken})
    return f"{len(broken)} row(s) in {', '.join(tables)} point at rows that do not exist"


@contextmanager
def _temporary_db(folder: Path, label: str) -> Iterator[Path]:
    """A fresh temporary file name in ``folder`` (the target's file system, so a rename is
    atomic), removed afterwards with any journal SQLite left beside it."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{label}-", suffix=".part")
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """Copy ``source`` into the file ``target`` in one step and make it a self-contained file."""
    with closing(sqlite3.connect(target)) as out:
        source.backup(out)
        out.execute("PRAGMA journal_mode = DELETE")
        problem = _integrity_problem(out)
        if problem is not None:
            raise UserError(f"the copy failed SQLite's integrity check ({problem}); nothing was replaced")


def default_backup_name() -> str:
    return "search_party-" + to_db_time(utcnow())[:19].replace(":", "").replace("-", "") + "Z.db"


def backup(db_path: Path, target: Path, *, overwrite: bool = False) -> BackupInfo:
    """Copy the live database at ``db_path`` to ``target`` (a file, or a folder to hold a file
    named by the time).  An existing file is only replaced with ``overwrite``."""
    if not db_path.is_file():
        raise UserError(f"there is no database at {db_path} to back up; check SEARCH_PARTY_DATA_DIR "
                        "or SEARCH_PARTY_DB")
    if target.is_dir():
        target = target / default_backup_name()
    if target.exists() and not overwrite:
        raise UserError(f"{target} already exists; choose another name or pass --force to replace it")
    if not target.parent.is_dir():
        raise UserError(f"the folder {target.parent} does not exist; create it first")
    if target.resolve() == db_path.resolve():
        raise UserError("the backup must not be the live database itself")
    with open_db(db_path, migrate=False) as live, _temporary_db(target.parent, target.name) as part:
        _copy(live.conn, part)
        with open(part, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(part, target)
        _fsync_dir(target.parent)
    return inspect_backup(target)


def inspect_backup(path: Path) -> BackupInfo:
    """Check that ``path`` is a whole Search Party database this code can use, and say what it
    holds; raises UserError saying what is wrong otherwise."""
    if not path.is_file():
        raise UserError(f"{path} is not a file")
    with open(path, "rb") as fh:
        if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise UserError(f"{path} is not a SQLite database, so not a Search Party backup")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            problem = _integrity_problem(conn)
            if problem is not None:
                raise UserError(f"{path} is damaged: it fails SQLite's integrity check ({problem})")
            problem = _foreign_key_problem(conn)
            if problem is not None:
                raise UserError(f"{path} is damaged: {problem}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "schema_version" not in tables:
                raise UserError(f"{path} is a SQLite database but not a Search Party one (it has no "
                                "schema_version table)")
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
            latest = MIGRATIONS[-1].version
            if version > latest:
                raise UserError(f"{path} is at schema version {version}, newer than this code ({latest}); "
                                "upgrade Search Party before restoring it")
            missing = [t for t in CORE_TABLES if t not in tables]
            if version < 1 or missing:
                raise UserError(f"{path} is not a whole Search Party database (schema version {version}"
                                + (f", missing {', '.join(missing)})" if missing else ")"))
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                      for t in COUNTED_TABLES if t in tables}
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} cannot be read as a database ({exc})") from None
    return BackupInfo(path, version, path.stat().st_size, counts)


def _rebuild_index(settings: Settings) -> int | None:
    """Replace the index file with one built from the restored vectors, for the model version
    most sightings were made by (the others' searches rebuild their own on first use)."""
    settings.index_path.unlink(missing_ok=True)
    with open_db(settings.db_path, migrate=False) as db:
        row = db.execute("SELECT model_version, length(vector) FROM sightings GROUP BY model_version "
                         "ORDER BY count(*) DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return VectorIndex.open(db, settings.index_path, row[0], row[1] // 4).count


def restore(source: Path, settings: Settings) -> RestoreResult:
    """Replace the live database with the backup ``source`` (see the module notes)."""
    info = inspect_backup(source)
    live_path = settings.db_path
    if live_path.exists() and source.resolve() == live_path.resolve():
        raise UserError("that is the live database itself; restore from a backup file")
    settings.prepare_dirs()
    with _temporary_db(live_path.parent, "restore") as staged:
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as backup_conn:
            _copy(backup_conn, staged)
        with open_db(staged) as migrated:  # an older backup is brought up to this code's schema
            migrated.execute("PRAGMA journal_mode = DELETE")
        with closing(sqlite3.connect(staged)) as staged_conn, open_db(live_path, migrate=False) as live:
            page_size = live.execute("PRAGMA page_size").fetchone()[0]
            if staged_conn.execute("PRAGMA page_size").fetchone()[0] != page_size:
                # A WAL database only takes a backup of its own page size.
                staged_conn.execute(f"PRAGMA page_size = {int(page_size)}")
                staged_conn.execute("VACUUM")
            # Checked as it will be restored (migrated, re-paged), before the live file is touched.
            problem = _integrity_problem(staged_conn) or _foreign_key_problem(staged_conn)
            if problem is not None:
                raise UserError(f"the database to restore fails its check after migrating ({problem}); "
                                "nothing was replaced")
            staged_conn.backup(live.conn)  # one write transaction on the live file
    with open_db(live_path) as live:
        version = live.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return RestoreResult(info, version, _rebuild_index(settings))
