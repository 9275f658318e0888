"""`search-party config`: the effective settings, after the environment is read and checked."""

from __future__ import annotations

import json

import click

from search_party.config import load_settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, variable to value.")
def config(as_json: bool) -> None:
    """Print every SEARCH_PARTY_* setting in effect (secrets masked), or stop at the first bad one."""
    rows = list(load_settings().described())
    if as_json:
        click.echo(json.dumps({variable: value for variable, value, _ in rows}, indent=1))
        return
    width = max(len(variable) for variable, _, _ in rows)
    value_width = min(48, max(len(value) for _, value, _ in rows))
    for variable, value, about in rows:
        click.echo(f"{variable:<{width}}  {value:<{value_width}}  {about}")
