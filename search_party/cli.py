"""The `search-party` command: every subcommand lives in search_party/commands/."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import click

from embeddings.images import ImageError
from embeddings.registry import ModelError
from search_party.commands import COMMANDS
from search_party.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="search-party")
def cli() -> None:
    """Search Party: an opt-in neighbourhood lost-dog matcher that never recognises a person."""


for _command in COMMANDS:
    cli.add_command(_command)

# Outer layers (the web app's `serve`) plug their commands in through an entry-point group, so
# search_party never imports web.
for _entry in entry_points(group="search_party.commands"):
    cli.add_command(_entry.load(), _entry.name)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (UserError, ImageError, ModelError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
