"""`search-party backup PATH` and `search-party restore PATH` (search_party.store.backup)."""

from __future__ import annotations

from pathlib import Path

import click

from search_party.config import load_settings
from search_party.store import backup as backups


def _counts(info: backups.BackupInfo) -> str:
    return ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in info.counts.items())


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it already exists.")
def backup(path: Path, force: bool) -> None:
    """Copy the database (everything Search Party keeps; the index is rebuilt from it) to PATH, a
    file or a folder, while the server and the worker keep running."""
    settings = load_settings()
    info = backups.backup(settings.db_path, path, overwrite=force)
    click.echo(f"backed up {settings.db_path} to {info.path} ({info.size_bytes:,} bytes, schema "
               f"{info.schema_version}: {_counts(info)})")


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask before replacing the live database.")
def restore(path: Path, yes: bool) -> None:
    """Replace the live database with the backup at PATH, then rebuild the search index.  The
    file is checked first; anything that is not a whole Search Party database is refused.
    Restart the server and the worker afterwards (they cache the index in memory)."""
    settings = load_settings()
    info = backups.inspect_backup(path)
    if not yes:
        click.confirm(f"Replace everything in {settings.db_path} with {path} ({_counts(info)})?",
                      abort=True)
    result = backups.restore(path, settings)
    index = ("no sightings, so no index" if result.index_vectors is None
             else f"index rebuilt with {result.index_vectors} vectors")
    click.echo(f"restored {path} into {settings.db_path} (schema {result.schema_version}: "
               f"{_counts(result.restored)}); {index}")
