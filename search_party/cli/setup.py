"""`search-party setup`: everything a fresh clone or a server needs before it serves. Safe to rerun.

It verifies the model files this server uses (fetching missing ones unless SEARCH_PARTY_OFFLINE),
makes sure the graphs it runs (the re-ID embedder's and the ImageNet one the species head reads)
are exported, and creates or migrates the database.  Exporting a
graph needs torch (the [train] extra); a production install has no torch and is given the graphs
a build machine exported (README: "A server without torch"), so it never imports it.
"""

from __future__ import annotations

import click

from embeddings import registry
from embeddings.embedder import SOURCES, Embedder
from embeddings.species import FEATURES
from search_party.config import load_settings
from search_party.errors import ModelError, UserError
from search_party.store.db import open_db, schema_version
from search_party.vision import model_files


@click.command()
def setup() -> None:
    """Verify the model files, export the ONNX graphs and create or migrate the database."""
    settings = load_settings()
    runtime = settings.vision_runtime()
    # Embedder weights are checked by Embedder.load below, which needs them only to export a graph.
    needed = set(model_files(settings)) - set(SOURCES.values())
    rows = registry.status(runtime)
    problems = [row.problem or row.name for row in rows if row.name in needed and not row.verified]
    if problems:
        raise UserError("model files are not ready:\n  " + "\n  ".join(problems))
    absent = sorted(row.name for row in rows if not row.verified)
    click.echo("models: verified by sha256" + (f" (not here, and not needed by these settings: "
                                               f"{', '.join(absent)})" if absent else ""))

    settings.prepare_dirs()
    used = {settings.embedder, FEATURES}  # the re-ID embedder and the one the species head reads
    for model in sorted(SOURCES, key=lambda name: name not in used):
        try:
            embedder = Embedder.load(model, runtime)
        except ModelError as exc:
            if model in used:
                raise
            click.echo(f"embedder {model}: not available here ({exc})")
            continue
        click.echo(f"embedder {model}: {embedder.onnx_path.name} ({embedder.version})")

    db = open_db(settings.db_path)
    click.echo(f"database: {settings.db_path} at schema version {schema_version(db)}")
    db.close()
