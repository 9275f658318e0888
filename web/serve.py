"""`search-party serve`: the web server and the ingest worker together, on the embedded defaults;
with ``--processes N``, N web processes accepting on one address (rate limits counted in Redis).

The data folder (SEARCH_PARTY_DATA_DIR, default data/) is created on first start.  On a loopback
address (the default 127.0.0.1) with no proxy in front (SEARCH_PARTY_TRUSTED_PROXIES unset, no
public address elsewhere) the run counts as local: without SEARCH_PARTY_SECRET_KEY a key is made
once and kept in the data folder, and the demo may be seeded.  Anything else is a real server: the
key must be configured, and a data folder holding the demo's accounts (published password) is
refused.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import click

from search_party.config import Settings, load_settings
from search_party.errors import UserError


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_run(host: str, settings: Settings) -> bool:
    """Only this machine can reach the server: a loopback bind, no proxy passing others' requests
    in, and no public address naming another host."""
    public_host = urlsplit(settings.public_url).hostname if settings.public_url else None
    return (_is_loopback(host) and not settings.behind_proxy
            and (public_host is None or _is_loopback(public_host)))


def _refuse_demo_accounts_on_a_real_server(settings: Settings) -> None:
    from search_party.measure.demo import holds_demo_accounts
    from search_party.store.db import open_db

    with open_db(settings.db_path) as db:
        if holds_demo_accounts(db):
            raise UserError(f"the database in {settings.data_dir} holds the demo's accounts, whose password "
                            "is published: it is only served on 127.0.0.1 without a proxy. Serve a data "
                            "folder of its own (SEARCH_PARTY_DATA_DIR)")


def _serve_in_processes(host: str, port: int, processes: int, settings: Settings, worker: bool) -> None:
    """Bind the address here, once per web process, then run ``processes`` web processes, each
    accepting on its own socket, until SIGTERM or Ctrl-C stops them all.

    The sockets share the port with SO_REUSEPORT, so the kernel spreads connections over them by
    a hash of each connection's addresses.  (One socket shared by all lets whichever process wakes
    first take every connection: on a busy box, one process answered everything.)"""
    if not settings.redis_url:
        raise UserError("--processes needs SEARCH_PARTY_REDIS_URL: rate limits must be counted in one place "
                        "that every web process sees, or each would allow the full limit")
    listeners = [socket.create_server((host, port), backlog=1024, reuse_port=True) for _ in range(processes)]
    children: list[subprocess.Popen[bytes]] = []
    for listener in listeners:
        listener.set_inheritable(True)
        fd = listener.fileno()
        command = [sys.executable, "-m", "search_party.cli", "serve", "--host", host, "--port", str(port),
                   "--no-worker", "--listen-fd", str(fd)]
        children.append(subprocess.Popen(command, pass_fds=[fd]))
    if worker:
        children.append(subprocess.Popen([sys.executable, "-m", "search_party.cli", "worker"]))
    click.echo(f"Search Party on http://{host}:{port}/ in {processes} web processes (data in {settings.data_dir}; "
               "Ctrl-C stops it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        raise UserError("a web process stopped; stopping the others (see the log above)")
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        listener.close()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-worker", is_flag=True, help="Do not start the ingest worker beside the server.")
@click.option("--demo", is_flag=True, help="First seed a small demo neighbourhood (search-party demo).")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Web processes sharing the address (more than 1 needs SEARCH_PARTY_REDIS_URL).")
@click.option("--listen-fd", type=int, hidden=True, help="(--processes) accept on this inherited socket.")
def serve(host: str, port: int, no_worker: bool, demo: bool, processes: int, listen_fd: int | None) -> None:
    """Start the web app (waitress) and the ingest worker."""
    from waitress import serve as waitress_serve

    from web import create_app
    from web.home import EXTENSION

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    settings.prepare_dirs()  # the data folder, created on first start
    local = is_local_run(host, settings)
    if demo and not local:
        raise UserError("the demo (its password is published) is only served on 127.0.0.1 without a proxy "
                        "(no SEARCH_PARTY_TRUSTED_PROXIES or public address); nothing was seeded")
    if demo and listen_fd is None:
        from search_party.cli.demo import seed_and_describe

        seed_and_describe()
    if not local:
        _refuse_demo_accounts_on_a_real_server(settings)
    elif settings.public_url is None:
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    if processes > 1:
        from web.config import web_config

        web_config(settings, dev=local)  # the secret key checked (or a local run's made) once, here
        _serve_in_processes(host, port, processes, settings, worker=not no_worker)
        return
    app = create_app({"SETTINGS": settings}, dev=local)
    if not app.extensions[EXTENSION].refresh().ok:  # verified once now; /healthz answers from memory
        click.echo("warning: this server is not ready (see the log above; `search-party models` says more)",
                   err=True)
    # SIGTERM (a service manager stopping us) unwinds like Ctrl-C, so the worker is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    worker = None
    if not no_worker:
        worker = subprocess.Popen([sys.executable, "-m", "search_party.cli", "worker"])
    if listen_fd is None:
        click.echo(f"Search Party on http://{host}:{port}/ (data in {settings.data_dir}; Ctrl-C stops it)")
    # Waitress drops X-Forwarded-* headers unless told otherwise; behind a proxy they reach
    # the app, whose ProxyFix believes exactly SEARCH_PARTY_TRUSTED_PROXIES hops of them.
    where: dict[str, Any] = ({"host": host, "port": port} if listen_fd is None
                             else {"sockets": [socket.socket(fileno=listen_fd)]})
    try:
        waitress_serve(app, threads=8, clear_untrusted_proxy_headers=not settings.behind_proxy, **where)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
