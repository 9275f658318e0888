"""`search-party setup`: everything a fresh clone needs before it serves or tests. Safe to rerun."""

from __future__ import annotations

import click

from embeddings import registry
from embeddings.embedder import SOURCES, Embedder
from search_party.config import load_settings
from search_party.errors import UserError
from search_party.store.db import open_db, schema_version


@click.command()
def setup() -> None:
    """Verify every model file, export the ONNX graphs and create or migrate the database."""
    settings = load_settings()
    runtime = settings.vision_runtime()
    problems = [row.problem or row.name for row in registry.status(runtime) if not row.verified]
    if problems:
        raise UserError("model files are not ready:\n  " + "\n  ".join(problems))
    click.echo("models: all verified by sha256")

    settings.prepare_dirs()
    for model in SOURCES:
        embedder = Embedder.load(model, runtime)
        click.echo(f"embedder {model}: {embedder.onnx_path.name} ({embedder.version})")

    db = open_db(settings.db_path)
    click.echo(f"database: {settings.db_path} at schema version {schema_version(db)}")
    db.close()
