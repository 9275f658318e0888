"""Real servers a test starts on 127.0.0.1 and stops: a free port, an SMTP server that keeps what
it receives (aiosmtpd), and a process's output read while it runs.  (A redis-server:
search_party.measure.local_redis, shared with `search-party bench scale`.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message

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

