"""The camera-side uploader: sends every new clip in a folder to a Search Party server, once.

Runs where a camera's recordings land (an NVR, a PC, a Raspberry Pi) with an upload token made on
the camera's page.  It needs only the standard library (urllib), never the vision stack.

- **New**: video files (search_party.clip_types) under the folder, hidden ones skipped, whose
  last change is at least ``settle_s`` old (a camera still writing a file is left alone).
- **Each once**: after the server accepts a clip, its path, size, time and sha256 go into a
  state file (written atomically), so a restart never sends it again, and a renamed copy with
  the same content is recognised without a network call.  If the agent dies between the server's
  answer and the state write, the next run sends the clip again and the server, which dedupes by
  content per camera, answers with the first clip: the clip is still stored once.
- **Retried**: connection failures, 429 and 5xx are retried with exponential backoff (the
  server's Retry-After wins); a clip that still fails is tried again on the next scan.  A clip the
  server refuses (4xx: not a video, too large) is recorded as refused and not sent again unless
  the file changes.  A refused token (401/403) stops the agent with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from search_party.clip_types import VIDEO_EXTENSIONS
from search_party.errors import UserError

log = logging.getLogger(__name__)

STATE_VERSION = 1
DEFAULT_STATE_NAME = ".search-party-uploads.json"
REQUEST_TIMEOUT_S = 120
MAX_TRIES = 6
MAX_BACKOFF_S = 60.0
TRANSIENT_STATUSES = (408, 425, 429, 500, 502, 503, 504, 507)  # 507: the server is short of disk
USER_AGENT = "search-party-agent/1"


# ---------------------------------------------------------------- the state file


@dataclass
class UploadState:
    """What this agent has sent, by relative path; saved after every change."""

    path: Path
    camera_id: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, camera_id: int) -> UploadState:
        if not path.exists():
            return cls(path, camera_id)
        try:
            data = json.loads(path.read_text())
            files = data["files"]
            if data.get("version") != STATE_VERSION or not isinstance(files, dict):
                raise ValueError("unknown version")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"cannot read the uploader's state file {path} ({exc}); move it away to "
                            "start afresh (the server still refuses duplicates)") from None
        if data.get("camera_id") != camera_id:
            raise UserError(f"the state file {path} belongs to camera {data.get('camera_id')}, not "
                            f"{camera_id}; give each camera its own --state file")
        return cls(path, camera_id, files)

    def save(self) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps({"version": STATE_VERSION, "camera_id": self.camera_id,
                                   "files": self.files}, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def is_settled(self, rel: str, stat: os.stat_result) -> bool:
        """Sent (or refused) already, and the file has not changed since."""
        entry = self.files.get(rel)
        return entry is not None and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns

    def clip_with_hash(self, sha256: str) -> int | None:
        for entry in self.files.values():
            if entry.get("sha256") == sha256 and entry.get("clip_id") is not None:
                return entry["clip_id"]
        return None

    def record(self, rel: str, stat: os.stat_result, sha256: str, *, clip_id: int | None,
               outcome: str, message: str) -> None:
        self.files[rel] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256,
                           "clip_id": clip_id, "outcome": outcome, "message": message,
                           "at": datetime.now(UTC).isoformat(timespec="seconds")}
        self.save()


# ---------------------------------------------------------------- HTTP


class _MultipartBody:
    """A multipart/form-data body streamed from the file (a clip is never read into memory)."""

    def __init__(self, path: Path, fields: dict[str, str]) -> None:
        self.boundary = "----search-party-" + secrets.token_hex(12)
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items())
        filename = path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
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


def post_clip(server: str, camera_id: int, token: str, path: Path, modified: float) -> Reply:
    body = _MultipartBody(path, {"modified": f"{modified:.3f}"})
    request = urllib.request.Request(
        f"{server}/api/cameras/{camera_id}/clips", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                 "Content-Type": f"multipart/form-data; boundary={body.boundary}",
                 "Content-Length": str(body.length), "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return _reply(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as exc:
        return _reply(exc.code, exc.read(), exc.headers)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Reply(0, {"error": f"cannot reach {server}: {reason}"})
    finally:
        body.close()


# ---------------------------------------------------------------- the agent


@dataclass
class ScanResult:
    uploaded: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    postponed: list[str] = field(default_factory=list)  # transient failure: next scan tries again

    @property
    def ok(self) -> bool:
        return not self.refused and not self.postponed


def check_server_url(server: str) -> str:
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--server {server!r} must be an address such as https://search-party.example.org")
    return server.strip().rstrip("/")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Agent:
    folder: Path
    camera_id: int
    token: str
    server: str
    state: UploadState
    settle_s: float = 10.0
    backoff_base_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = print

    @classmethod
    def create(cls, folder: Path | str, camera_id: int, token: str, server: str,
               state_path: Path | str | None = None, **options: Any) -> Agent:
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(f"{folder} is not a folder")
        if not token.strip():
            raise UserError("no upload token: pass --token or set SEARCH_PARTY_AGENT_TOKEN (make one on "
                            "the camera's page)")
        path = Path(state_path) if state_path else folder / DEFAULT_STATE_NAME
        return cls(folder, camera_id, token.strip(), check_server_url(server),
                   UploadState.load(path, camera_id), **options)

    def candidates(self, now: float) -> Iterator[tuple[str, Path, os.stat_result]]:
        """Video files not yet sent, oldest first, that have stopped changing."""
        found = []
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                if name.startswith(".") or not name.lower().endswith(VIDEO_EXTENSIONS):
                    continue
                path = Path(root) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # deleted while we looked
                rel = path.relative_to(self.folder).as_posix()
                if self.state.is_settled(rel, stat) or now - stat.st_mtime < self.settle_s:
                    continue
                found.append((stat.st_mtime_ns, rel, path, stat))
        for _, rel, path, stat in sorted(found):
            yield rel, path, stat

    def _send(self, path: Path, stat: os.stat_result) -> Reply:
        reply = Reply(0, {})
        for attempt in range(MAX_TRIES):
            reply = post_clip(self.server, self.camera_id, self.token, path, stat.st_mtime)
            if reply.status in (401, 403):
                raise UserError(f"the server refused the upload token ({reply.error}); make a new one on "
                                "the camera's page")
            if reply.status != 0 and reply.status not in TRANSIENT_STATUSES:
                return reply
            if attempt + 1 < MAX_TRIES:
                wait = min(MAX_BACKOFF_S, self.backoff_base_s * 2 ** attempt)
                if reply.retry_after is not None:
                    wait = min(MAX_BACKOFF_S, reply.retry_after)
                log.info("%s: %s; trying again in %.0f s", path.name, reply.error, wait)
                self.sleep(wait)
        return reply

    def scan_once(self) -> ScanResult:
        result = ScanResult()
        for rel, path, stat in self.candidates(time.time()):
            sha256 = _sha256(path)
            known = self.state.clip_with_hash(sha256)
            if known is not None:
                self.state.record(rel, stat, sha256, clip_id=known, outcome="duplicate",
                                  message=f"same content as clip {known}")
                self.say(f"{rel}: same content as clip {known}, already sent")
                result.duplicates.append(rel)
                continue
            reply = self._send(path, stat)
            if reply.status in (200, 201) and reply.body.get("clips"):
                clip = reply.body["clips"][0]
                duplicate = bool(clip.get("duplicate"))
                self.state.record(rel, stat, sha256, clip_id=clip.get("id"),
                                  outcome="duplicate" if duplicate else "uploaded",
                                  message=str(clip.get("message", "")))
                self.say(f"{rel}: {'already on the server' if duplicate else 'uploaded'} as clip "
                         f"{clip.get('id')} ({clip.get('status')})")
                (result.duplicates if duplicate else result.uploaded).append(rel)
            elif reply.status == 0 or reply.status in TRANSIENT_STATUSES:
                self.say(f"{rel}: not sent ({reply.error}); will try again")
                result.postponed.append(rel)
            else:
                self.state.record(rel, stat, sha256, clip_id=None, outcome="refused", message=reply.error)
                self.say(f"{rel}: refused by the server: {reply.error}")
                result.refused.append(rel)
        return result

    def watch(self, interval_s: float) -> None:
        """Scan every ``interval_s`` seconds until interrupted."""
        while True:
            self.scan_once()
            self.sleep(interval_s)
