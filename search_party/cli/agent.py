"""`search-party agent watch`: the camera-side folder uploader (search_party/agent/watch.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from search_party.agent.watch import Agent
from search_party.config import load_agent_settings

DEFAULT_SERVER = "http://127.0.0.1:8000"


@click.group()
def agent() -> None:
    """Upload a camera's clips to a Search Party server from the machine that records them."""


@agent.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--camera", "camera_id", type=int, required=True, help="The camera's id (on its page).")
@click.option("--token", help="The camera's upload token (or set SEARCH_PARTY_AGENT_TOKEN, which keeps "
              "it out of the process list).")
@click.option("--server", help="The Search Party server's address (or set SEARCH_PARTY_SERVER; default "
              f"{DEFAULT_SERVER}).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to remember what was sent (default FOLDER/.search-party-uploads.json).")
@click.option("--interval", default=30.0, show_default=True, type=click.FloatRange(1),
              help="Seconds between scans of the folder.")
@click.option("--settle", default=10.0, show_default=True, type=click.FloatRange(0),
              help="Seconds a file must go unchanged before it is sent (the camera may still be writing).")
@click.option("--once", is_flag=True, help="Scan once, send what is new, and exit (exit 2 if a clip "
              "was refused or could not be sent).")
def watch(folder: Path, camera_id: int, token: str | None, server: str | None, state_path: Path | None,
          interval: float, settle: float, once: bool) -> None:
    """Send every new video clip under FOLDER to the server, each exactly once (resumable)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    defaults = load_agent_settings()
    token = token or (defaults.agent_token.get_secret_value() if defaults.agent_token else "")
    server = server or defaults.server or DEFAULT_SERVER
    uploader = Agent.create(folder, camera_id, token, server, state_path, settle_s=settle, say=click.echo)
    if once:
        result = uploader.scan_once()
        click.echo(f"{len(result.uploaded)} uploaded, {len(result.duplicates)} already sent, "
                   f"{len(result.refused)} refused, {len(result.postponed)} to retry")
        if not result.ok:
            sys.exit(2)
        return
    click.echo(f"watching {folder} for camera {camera_id}; Ctrl-C stops")
    uploader.watch(interval)
