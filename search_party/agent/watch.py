"""The camera-side folder uploader: sends every new clip in a folder to a Search Party server, once.

Runs where a camera's recordings land (an NVR, a PC, a Raspberry Pi) with an upload token made on
the camera's page.  It needs only the standard library, never the vision stack; the server
address, retries and the state file are search_party.agent.client's.

- **New**: video files (search_party.clip_types) under the folder, hidden ones skipped, whose
  last change is at least ``settle_s`` old (a camera still writing a file is left alone).
- **Asked first**: each scan begins by asking the server whether the camera is opted in and not
  paused; while it is not, nothing is sent (and nothing is marked sent: it goes later).
- **Each once**: after the server accepts a clip, its path, size, time and sha256 go into the
  state file, so a restart never sends it again, and a renamed copy with the same content is
  recognised without a network call.  If the agent dies between the server's answer and the
  state write, the next run sends the clip again and the server, which dedupes by content per
  camera, answers with the first clip: the clip is still stored once.
- **When filmed**: the file's modification time and this machine's time zone go with each clip;
  the server prefers the container's own time, then a camera file-name pattern read in the
  camera's zone (search_party.community.filming_time).
- **Refused**: a clip the server refuses (4xx: not a video, too large) is recorded as refused and
  not sent again unless the file changes.  A refused token (401/403) stops the agent.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_party.agent.client import SentLog, ServerClient, check_server_url, local_time_zone
from search_party.clip_types import VIDEO_EXTENSIONS
from search_party.errors import UserError

DEFAULT_STATE_NAME = ".search-party-uploads.json"


@dataclass
class ScanResult:
    uploaded: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    postponed: list[str] = field(default_factory=list)  # transient failure: next scan tries again
    held: str = ""  # why nothing was sent (the camera is paused or opted out), if so

    @property
    def ok(self) -> bool:
        return not self.refused and not self.postponed and not self.held


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_settled(state: SentLog, rel: str, stat: os.stat_result) -> bool:
    """Sent (or refused) already, and the file has not changed since."""
    entry = state.files.get(rel)
    return entry is not None and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns


def _clip_with_hash(state: SentLog, sha256: str) -> int | None:
    for entry in state.files.values():
        if entry.get("sha256") == sha256 and entry.get("clip_id") is not None:
            return entry["clip_id"]
    return None


@dataclass
class Agent:
    folder: Path
    client: ServerClient
    state: SentLog
    settle_s: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = print

    @classmethod
    def create(cls, folder: Path | str, camera_id: int, token: str, server: str,
               state_path: Path | str | None = None, *, local_network: bool = False,
               sleep: Callable[[float], None] = time.sleep, backoff_base_s: float = 1.0,
               **options: Any) -> Agent:
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(f"{folder} is not a folder")
        client = ServerClient(check_server_url(server, local_network=local_network), camera_id, token,
                              backoff_base_s=backoff_base_s, sleep=sleep)
        path = Path(state_path) if state_path else folder / DEFAULT_STATE_NAME
        return cls(folder, client, SentLog.load(path, camera_id), sleep=sleep, **options)

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
                if _is_settled(self.state, rel, stat) or now - stat.st_mtime < self.settle_s:
                    continue
                found.append((stat.st_mtime_ns, rel, path, stat))
        for _, rel, path, stat in sorted(found):
            yield rel, path, stat

    def _record(self, rel: str, stat: os.stat_result, sha256: str, *, clip_id: int | None, outcome: str,
                message: str) -> None:
        self.state.record(rel, size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=sha256, clip_id=clip_id,
                          outcome=outcome, message=message)

    def scan_once(self) -> ScanResult:
        result = ScanResult()
        waiting = list(self.candidates(time.time()))
        if not waiting:
            return result
        camera = self.client.camera_state()
        if camera is None or not camera.accepting:
            result.held = camera.why_not if camera else "the server cannot be reached"
            self.say(f"{len(waiting)} clip(s) waiting; not sent: camera {self.client.camera_id} is {result.held}"
                     if camera else f"{len(waiting)} clip(s) waiting; {result.held}")
            return result
        zone = local_time_zone()
        for rel, path, stat in waiting:
            sha256 = _sha256(path)
            known = _clip_with_hash(self.state, sha256)
            if known is not None:
                self._record(rel, stat, sha256, clip_id=known, outcome="duplicate",
                             message=f"same content as clip {known}")
                self.say(f"{rel}: same content as clip {known}, already sent")
                result.duplicates.append(rel)
                continue
            reply = self.client.post_clip(path, modified=stat.st_mtime, time_zone=zone)
            if reply.status in (200, 201) and reply.body.get("clips"):
                clip = reply.body["clips"][0]
                duplicate = bool(clip.get("duplicate"))
                self._record(rel, stat, sha256, clip_id=clip.get("id"),
                             outcome="duplicate" if duplicate else "uploaded", message=str(clip.get("message", "")))
                self.say(f"{rel}: {'already on the server' if duplicate else 'uploaded'} as clip "
                         f"{clip.get('id')} ({clip.get('status')})")
                (result.duplicates if duplicate else result.uploaded).append(rel)
            elif reply.transient:
                self.say(f"{rel}: not sent ({reply.error}); will try again")
                result.postponed.append(rel)
            else:
                self._record(rel, stat, sha256, clip_id=None, outcome="refused", message=reply.error)
                self.say(f"{rel}: refused by the server: {reply.error}")
                result.refused.append(rel)
        return result

    def watch(self, interval_s: float) -> None:
        """Scan every ``interval_s`` seconds until interrupted."""
        while True:
            self.scan_once()
            self.sleep(interval_s)
