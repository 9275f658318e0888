"""What every camera-side agent shares: the server's address check, the HTTP client (streamed
clip upload, the camera's state), retries, and the state file that remembers what was sent.

- **The address**: ``https://`` always; plain ``http://`` only when the neighbour says the server
  is on their own network (``local_network``), since an upload token and footage would otherwise
  cross the internet in clear.
- **Ask first**: ``camera_state`` reads the token's own camera (opted in? paused?) so an agent
  sends nothing while the owner has paused or opted out; the server refuses such uploads too.
- **Retried**: connection failures, 429 and 5xx are retried with exponential backoff (the
  server's Retry-After wins); a refused token (401/403) stops the agent with a clear message.
- **Each once**: ``SentLog`` is a JSON file written atomically after every change, so a restart
  never sends the same thing twice (the server also dedupes clips by content, per camera).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from search_party.errors import UserError

log = logging.getLogger(__name__)

STATE_VERSION = 1
REQUEST_TIMEOUT_S = 120
MAX_TRIES = 6
MAX_BACKOFF_S = 60.0
TRANSIENT_STATUSES = (408, 425, 429, 500, 502, 503, 504, 507)  # 507: the server is short of disk
USER_AGENT = "search-party-agent/1"


# ---------------------------------------------------------------- the server's address


def check_server_url(server: str, *, local_network: bool = False) -> str:
    """The server's base address, refused unless it is https:// (or http:// on a local network,
    when the neighbour says so)."""
    text = server.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--server {server!r} must be an address such as https://search-party.example.org")
    if parts.scheme == "http" and not local_network:
        raise UserError(f"--server {server!r} is plain http://: the upload token and your footage would cross "
                        "the network unencrypted. Use the server's https:// address, or pass --local-network "
                        "if the server is on your own network")
    return text.rstrip("/")


# ---------------------------------------------------------------- what was sent


@dataclass
class SentLog:
    """What this agent has sent (or had refused), by key (a file's relative path, a clip's name,
    a Frigate event id); saved after every change.  ``extra`` keeps an agent's own bookkeeping
    (a Frigate bridge's catch-up time)."""

    path: Path
    camera_id: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, camera_id: int) -> SentLog:
        if not path.exists():
            return cls(path, camera_id)
        try:
            data = json.loads(path.read_text())
            files = data["files"]
            if data.get("version") != STATE_VERSION or not isinstance(files, dict):
                raise ValueError("unknown version")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"cannot read the agent's state file {path} ({exc}); move it away to "
                            "start afresh (the server still refuses duplicates)") from None
        if data.get("camera_id") != camera_id:
            raise UserError(f"the state file {path} belongs to camera {data.get('camera_id')}, not "
                            f"{camera_id}; give each camera its own --state file")
        return cls(path, camera_id, files, dict(data.get("extra") or {}))

    def save(self) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps({"version": STATE_VERSION, "camera_id": self.camera_id,
                                   "files": self.files, "extra": self.extra}, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def record(self, key: str, **entry: Any) -> None:
        self.files[key] = {**entry, "at": datetime.now(UTC).isoformat(timespec="seconds")}
        self.save()


# ---------------------------------------------------------------- HTTP


class _MultipartBody:
    """A multipart/form-data body streamed from the file (a clip is never read into memory)."""

    def __init__(self, path: Path, fields: dict[str, str], filename: str) -> None:
        self.boundary = "----search-party-" + secrets.token_hex(12)
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items())
        filename = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head += (f'--{self.boundary}\r\nContent-Disposition: form-data; name="clip"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._parts: list[bytes | Path] = [head, path, tail]
        self.length = len(head) + path.stat().st_size + len(tail)
        self._current: Any = None
        self._index = 0

    def read(self, size: int = -1) -> bytes:
        out = b""
        while self._index < len(self._parts) and (size < 0 or len(out) < size):
            part = self._parts[self._index]
            if isinstance(part, Path):
                if self._current is None:
                    self._current = part.open("rb")
                chunk = self._current.read(-1 if size < 0 else size - len(out))
                if not chunk:
                    self._current.close()
                    self._current = None
                    self._index += 1
                out += chunk
            else:
                out += part
                self._index += 1
        return out

    def close(self) -> None:
        if self._current is not None:
            self._current.close()


@dataclass(frozen=True)
class Reply:
    status: int  # HTTP status, or 0 when no answer came (connection failed)
    body: dict[str, Any]
    retry_after: float | None = None

    @property
    def error(self) -> str:
        return str(self.body.get("error") or self.body.get("message") or f"HTTP {self.status}")

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status in TRANSIENT_STATUSES


def _reply(status: int, raw: bytes, headers: Any) -> Reply:
    try:
        body = json.loads(raw.decode() or "{}")
        if not isinstance(body, dict):
            body = {}
    except ValueError:
        body = {"error": f"the server answered HTTP {status} with something that is not JSON"}
    retry_after = None
    if headers is not None and headers.get("Retry-After", "").strip().isdigit():
        retry_after = float(headers["Retry-After"].strip())
    return Reply(status, body, retry_after)


def send(request: urllib.request.Request, server: str) -> Reply:
    """One HTTP request; every answer (and no answer: status 0) as a Reply, never an exception."""
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return _reply(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as exc:
        return _reply(exc.code, exc.read(), exc.headers)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Reply(0, {"error": f"cannot reach {server}: {reason}"})


@dataclass(frozen=True)
class CameraState:
    """What the server says about the token's camera: clips are accepted only while ``accepting``."""

    opted_in: bool
    paused: bool
    time_zone: str | None

    @property
    def accepting(self) -> bool:
        return self.opted_in and not self.paused

    @property
    def why_not(self) -> str:
        return "opted out" if not self.opted_in else "paused" if self.paused else ""


@dataclass
class ServerClient:
    """One camera's side of the conversation with the server, with retries."""

    server: str
    camera_id: int
    token: str
    backoff_base_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.token.strip():
            raise UserError("no upload token: pass --token or set SEARCH_PARTY_AGENT_TOKEN (make one on "
                            "the camera's page)")
        self.token = self.token.strip()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json", "User-Agent": USER_AGENT}

    def _with_retries(self, what: str, attempt: Callable[[], Reply]) -> Reply:
        reply = Reply(0, {})
        for n in range(MAX_TRIES):
            reply = attempt()
            if reply.status in (401, 403):
                raise UserError(f"the server refused the upload token ({reply.error}); make a new one on "
                                "the camera's page")
            if not reply.transient:
                return reply
            if n + 1 < MAX_TRIES:
                wait = min(MAX_BACKOFF_S, self.backoff_base_s * 2 ** n)
                if reply.retry_after is not None:
                    wait = min(MAX_BACKOFF_S, reply.retry_after)
                log.info("%s: %s; trying again in %.0f s", what, reply.error, wait)
                self.sleep(wait)
        return reply

    def camera_state(self) -> CameraState | None:
        """The camera's state, or None when the server cannot be reached (the caller waits and
        sends nothing meanwhile)."""
        request = urllib.request.Request(f"{self.server}/api/cameras/{self.camera_id}/state",
                                         headers=self._headers())
        reply = self._with_retries("camera state", lambda: send(request, self.server))
        if reply.status != 200:
            if reply.transient:
                return None
            raise UserError(f"the server would not say whether camera {self.camera_id} is opted in "
                            f"({reply.error})")
        body = reply.body
        return CameraState(bool(body.get("opted_in")), bool(body.get("paused")), body.get("time_zone"))

    def post_clip(self, path: Path, *, filename: str | None = None, start: datetime | None = None,
                  modified: float | None = None, time_zone: str | None = None) -> Reply:
        """Upload one clip (streamed).  ``start`` is the true time of its first frame, when the
        agent knows it; otherwise the server works it out (container, file name, ``modified``)."""
        fields = {}
        if start is not None:
            fields["start"] = start.isoformat()
        if modified is not None:
            fields["modified"] = f"{modified:.3f}"
        if time_zone:
            fields["time_zone"] = time_zone

        def attempt() -> Reply:
            body = _MultipartBody(path, fields, filename or path.name)
            request = urllib.request.Request(
                f"{self.server}/api/cameras/{self.camera_id}/clips", data=body, method="POST",
                headers={**self._headers(), "Content-Type": f"multipart/form-data; boundary={body.boundary}",
                         "Content-Length": str(body.length)})
            try:
                return send(request, self.server)
            finally:
                body.close()

        return self._with_retries(filename or path.name, attempt)


def local_time_zone() -> str | None:
    """This machine's IANA time zone name (TZ, or the /etc/localtime link), or None: sent with
    clips whose file names carry a local time, for a camera whose owner set no zone."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            target = os.readlink("/etc/localtime")
        except OSError:
            return None
        name = target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else ""
    return name or None
