"""`search-party bench scale CLIP`: clips per minute with 1, 2 and 3 remote ingest workers over a
real Redis and the real server, and the server's CPU per clip (search_party.measure.scale_bench)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from search_party.config import load_settings
from search_party.errors import UserError
from search_party.measure.scale_bench import run_scale, table


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--workers {text!r} must be worker counts separated by commas, e.g. 1,2,3") from None
    if not counts or min(counts) < 1 or max(counts) > 16:
        raise UserError(f"--workers {text!r}: each count must be between 1 and 16")
    return counts


@click.command()
@click.argument("clip", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--clips", default=20, show_default=True, type=click.IntRange(1, 10_000),
              help="Copies of CLIP processed per worker count.")
@click.option("--workers", "workers", default="1,2,3", show_default=True,
              help="Worker counts to measure, comma-separated.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def scale(clip: Path, clips: int, workers: str, as_json: bool) -> None:
    """Clips per minute with 1, 2, 3 remote workers (each its own process and folder) on this
    machine, with its cores printed beside, and the server's CPU per clip for serving the workers
    (claim, clip download, heartbeats, checking and storing results).  Needs redis-server."""
    rows = run_scale(clip, load_settings(), counts=_counts(workers), clips=clips)
    cores = os.cpu_count() or 1
    if as_json:
        click.echo(json.dumps({"clip": clip.name, "cores": cores, "rows": [r.as_dict() for r in rows]}, indent=2))
    else:
        click.echo(table(rows, clip, cores))
