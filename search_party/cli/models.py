"""`search-party models`: every weight file, where it was found and whether it verified."""

from __future__ import annotations

import json

import click

from embeddings import registry
from search_party.config import load_settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
def models(as_json: bool) -> None:
    """List every model file, where it was found and whether its sha256 verified."""
    rows = registry.status(load_settings().vision_runtime())
    if as_json:
        for row in rows:
            click.echo(json.dumps({"name": row.name, "file": row.filename,
                                   "path": str(row.path) if row.path else None,
                                   "verified": row.verified, "problem": row.problem}))
    else:
        width = max(len(r.name) for r in rows)
        for row in rows:
            state = "ok" if row.verified else "MISSING" if row.path is None else "BAD SHA256"
            click.echo(f"{row.name:<{width}}  {state:<10}  {row.path or row.problem}")
    if not all(r.verified for r in rows):
        raise SystemExit(1)
