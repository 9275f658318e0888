"""`search-party demo`: seed a small neighbourhood from the committed fixture (search_party/measure/demo.py)
and say how to look at it."""

from __future__ import annotations

import click

from search_party.community import notifications
from search_party.config import load_settings
from search_party.measure import demo as demo_data
from search_party.store.db import open_db


def seed_and_describe() -> None:
    """Seed the demo into the configured data folder and print the accounts to sign in with."""
    settings = load_settings()
    settings.prepare_dirs()
    with open_db(settings.db_path) as db:
        result = demo_data.seed(settings, db)
        notifications.deliver_pending(db, notifications.mailer_for(settings))
    if result.created:
        click.echo(f"Demo neighbourhood seeded in {settings.data_dir}: Rex's search compared "
                   f"{result.sightings_compared} sighting(s) and asked {result.requests_sent} camera owner(s).")
    else:
        click.echo(f"The demo is already seeded in {settings.data_dir}.")
    click.echo(f"Sign in at /login with any of these (password: {demo_data.PASSWORD!r}):")
    for account in result.accounts:
        if account.signs_in:
            click.echo(f"  {account.email:32} {account.who}")
    if result.report_id:
        click.echo(f"Rex's search page: /reports/{result.report_id} (as alex@demo.example)")


@click.command()
def demo() -> None:
    """Seed a small demo neighbourhood: neighbours, cameras, a lost dog that was filmed, a match."""
    seed_and_describe()
