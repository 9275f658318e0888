"""`search-party audit privacy`: the privacy audit of search_party.measure.privacy_audit, as a command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from search_party.config import load_settings
from search_party.measure.privacy_audit import DEFAULT_DATA_DIR, audit_sources, run_audit, summary_lines


@click.group()
def audit() -> None:
    """Audits that prove the project's guarantees on real data."""


@audit.command()
@click.argument("data_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the summary.")
def privacy(data_dir: Path | None, as_json: bool) -> None:
    """Run every image and video of DATA_DIR/persons and DATA_DIR/videos (default
    ../shared/data) and the test fixture through the report wizard and the full ingest, in a
    scratch instance, and count person images refused, person vectors stored, person pixels
    blurred and metadata kept.  Exits 1 if the audit fails."""
    settings = load_settings()
    sources = audit_sources(data_dir or DEFAULT_DATA_DIR)
    report = run_audit(sources, settings, work_dir=None)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else "\n".join(summary_lines(report)))
    if not report.passed:
        sys.exit(1)
