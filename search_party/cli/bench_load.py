"""`search-party bench load`: the bounded load test of search_party.measure.load_test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from search_party.config import PROJECT_ROOT, load_settings
from search_party.measure.load_test import run_load

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"


@click.command()
@click.option("--seconds", type=click.FloatRange(1, 3600), default=30, show_default=True,
              help="How long the clients keep working.")
@click.option("--clients", type=click.IntRange(3, 200), default=12, show_default=True,
              help="Clients at once: about half searching, a quarter uploading, a quarter answering.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder holding the puppy clip (default: ../shared/data).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def load(seconds: float, clients: int, data_dir: Path | None, as_json: bool) -> None:
    """Many clients searching, uploading and answering against the real server on 127.0.0.1 for
    a fixed time, in a scratch instance: p50/p95 latency per request, 5xx count, lost writes.
    Exits 1 on any 5xx or lost write."""
    result = run_load(data_dir or DEFAULT_DATA, load_settings(), seconds=seconds, clients=clients)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else result.table())
    if not result.passed:
        sys.exit(1)
