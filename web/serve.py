"""`search-party serve`: the web server and the ingest worker together, on the embedded defaults."""

from __future__ import annotations

import subprocess
import sys

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-worker", is_flag=True, help="Do not start the ingest worker beside the server.")
def serve(host: str, port: int, no_worker: bool) -> None:
    """Start the web app (waitress) and the ingest worker."""
    from waitress import serve as waitress_serve

    from web import create_app

    app = create_app()
    worker = None
    if not no_worker:
        worker = subprocess.Popen([sys.executable, "-m", "search_party.cli", "worker"])
    click.echo(f"Search Party on http://{host}:{port}/ (Ctrl-C stops it)")
    try:
        waitress_serve(app, host=host, port=port, threads=8)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
