"""The `search-party` command; each subcommand is a module here, imported only when it runs, so a
light command (the camera-side `agent`, `config`, `--help`) never loads the vision stack.
May import: every other part of search_party (never web: it plugs `serve` in by entry point)."""

from __future__ import annotations

import sys
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

import click

from search_party.errors import ImageError, ModelError, UserError


class LazyGroup(click.Group):
    """A group whose subcommands are given as ``"module:attribute"`` (a module of this package,
    or a dotted module path) or as nested groups, and imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str | click.Command] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.lazy:
            return super().get_command(ctx, name)
        target = self.lazy[name]
        if isinstance(target, str):
            module, _, attribute = target.partition(":")
            if "." not in module:
                module = f"{__name__}.{module}"
            target = getattr(import_module(module), attribute)
            assert isinstance(target, click.Command), f"{module}:{attribute} is not a command"
            self.lazy[name] = target
        return target


bench = LazyGroup("bench", help="Speed measured on real data, with the baseline beside it.", lazy={
    "vision": "bench:vision", "ingest": "bench_ingest:ingest", "load": "bench_load:load", "scale": "bench_scale:scale",
    "search": "search_tools:bench_search"})
evaluate = LazyGroup("eval", help="Accuracy measured on real labelled data.", lazy={
    "reid": "reid:eval_reid", "search": "search_tools:eval_search", "species": "species:eval_species"})
training = LazyGroup("train", help="Fit the models on real labelled data.", lazy={
    "reid": "reid:train_command", "species": "species:train_species"})


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, lazy={
    "setup": "setup:setup", "models": "models:models", "config": "settings:config",
    "detect": "detect:detect", "bench": bench, "eval": evaluate, "train": training,
    "camera": "ingest:camera", "ingest": "ingest:ingest", "clips": "ingest:clips",
    "worker": "ingest:worker", "worker-token": "ingest:worker_token_group", "agent": "agent:agent",
    "user": "domain:user",
    "report": "domain:report", "consent": "domain:consent_group", "inbox": "domain:inbox",
    "activity": "domain:activity_log", "retention": "domain:retention_group",
    "audit": "audit:audit", "backup": "backup:backup", "restore": "backup:restore",
    "demo": "demo:demo"})
@click.version_option(package_name="search-party")
def cli() -> None:
    """Search Party: an opt-in neighbourhood lost-dog matcher that never recognises a person."""


# Outer layers (the web app's `serve`) plug their commands in through an entry-point group, so
# search_party never imports web; they are loaded when first used, like the rest.
for _entry in entry_points(group="search_party.commands"):
    cli.lazy[_entry.name] = _entry.value


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
