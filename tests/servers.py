"""Real servers a test starts on 127.0.0.1 and stops: a free port, an SMTP server that keeps what
it receives (aiosmtpd), a redis-server that keeps nothing on disk, and a process's output read
while it runs."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message

import redis
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collect(MessageHandler):
    def __init__(self, into: list[Message]) -> None:
        super().__init__()
        self.into = into

    def handle_message(self, message: Message) -> None:
        self.into.append(message)


@dataclass
class SmtpServer:
    port: int
    messages: list[Message] = field(default_factory=list)

    def settings(self) -> dict[str, object]:
        """Settings fields that send mail here (plain SMTP, no login)."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_tls": "none",
                "smtp_from": "search-party@example.org"}


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on a free port; ``messages`` holds every e-mail it received."""
    server = SmtpServer(free_port())
    controller = Controller(_Collect(server.messages), hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@contextmanager
def redis_server() -> Iterator[str]:
    """A real redis-server (Debian's) on a free port on 127.0.0.1, keeping nothing on disk;
    yields its redis:// URL and stops it afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="redis-") as folder:
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url)
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            client.close()
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
