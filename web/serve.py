"""`search-party serve`: the web server and the ingest worker together, on the embedded defaults.

The data folder (SEARCH_PARTY_DATA_DIR, default data/) is created on first start.  On a loopback
address (the default 127.0.0.1) the run counts as local: without SEARCH_PARTY_SECRET_KEY a key is
made once and kept in the data folder.  On any other address the key must be configured.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import subprocess
import sys

import click

from search_party.config import load_settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-worker", is_flag=True, help="Do not start the ingest worker beside the server.")
@click.option("--demo", is_flag=True, help="First seed a small demo neighbourhood (search-party demo).")
def serve(host: str, port: int, no_worker: bool, demo: bool) -> None:
    """Start the web app (waitress) and the ingest worker."""
    from waitress import serve as waitress_serve

    from web import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    settings.prepare_dirs()  # the data folder, created on first start
    if demo:
        from search_party.cli.demo import seed_and_describe

        seed_and_describe()
    if settings.public_url is None:
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    app = create_app({"SETTINGS": settings}, dev=_is_loopback(host))
    # SIGTERM (a service manager stopping us) unwinds like Ctrl-C, so the worker is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    worker = None
    if not no_worker:
        worker = subprocess.Popen([sys.executable, "-m", "search_party.cli", "worker"])
    click.echo(f"Search Party on http://{host}:{port}/ (data in {settings.data_dir}; Ctrl-C stops it)")
    try:
        waitress_serve(app, host=host, port=port, threads=8)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
