"""A stateless remote ingest worker: `search-party worker --remote URL`, on a machine that shares
no disk and no database with the server.

It takes clip ids from the server's Redis queue (the same huey task the server's own worker runs,
with this body instead), and for each: claims the clip through the server's internal API
(web/internal.py), streams its bytes into its own folder and checks their sha256, runs the same
pipeline as the server (persons blurred in every crop it keeps; only dogs and cats embedded),
and posts the sightings, thumbnails and vectors back; the server checks them and stores them in
one transaction with its claim, exactly once.  While it works it renews its claim every third of
the lease; killed, it simply stops renewing, and the server's upkeep puts the clip back in the
queue for another worker.  Its folder holds at most the clips in hand: each is deleted when done.

HTTP goes through the camera agent's client (search_party.agent.client.send): every answer as a
Reply, connection failures, 429 and 5xx retried with backoff; a refused token stops the worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from search_party import vision
from search_party.agent.client import MAX_BACKOFF_S, MAX_TRIES, REQUEST_TIMEOUT_S, Reply, send
from search_party.config import Settings
from search_party.errors import ImageError, ModelError, UserError
from search_party.ingest import jobs
from search_party.ingest.clip_task import failure_reason, pause_for_crash_tests
from search_party.ingest.options import IngestOptions
from search_party.ingest.pipeline import process_clip
from search_party.ingest.remote_wire import to_wire

log = logging.getLogger(__name__)

USER_AGENT = "search-party-worker/1"
CHUNK = 1 << 20


def check_remote_url(url: str, *, plain_http: bool = False) -> str:
    """The server's base address: https://, or http:// only when the operator says the link
    between server and workers is private (``plain_http``): the worker token and the footage
    would otherwise cross the network in clear."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--remote {url!r} must be the server's address, such as https://search-party.example.org")
    if parts.scheme == "http" and not plain_http:
        raise UserError(f"--remote {url!r} is plain http://: the worker token and the footage would cross the "
                        "network unencrypted. Use https://, or pass --plain-http on a private network")
    return url.strip().rstrip("/")


class ClaimGone(RuntimeError):
    """The server says this clip is no longer ours (409): drop it, store nothing."""


@dataclass
class InternalClient:
    """The worker's side of web/internal.py, with retries."""

    server: str
    token: str
    backoff_base_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.token = self.token.strip()
        if not self.token:
            raise UserError("no worker token: pass --worker-token or set SEARCH_PARTY_WORKER_TOKEN "
                            "(the server's operator makes one with `search-party worker-token add`)")

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                "User-Agent": USER_AGENT, **extra}

    def _retried(self, what: str, attempt: Callable[[], Reply]) -> Reply:
        reply = Reply(0, {})
        for n in range(MAX_TRIES):
            reply = attempt()
            if reply.status in (401, 403):
                raise UserError(f"the server refused the worker token ({reply.error})")
            if reply.status == 409:
                raise ClaimGone(reply.error)
            if not reply.transient:
                return reply
            if n + 1 < MAX_TRIES:
                wait = min(MAX_BACKOFF_S, reply.retry_after or self.backoff_base_s * 2 ** n)
                log.info("%s: %s; trying again in %.0f s", what, reply.error, wait)
                self.sleep(wait)
        return reply

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON call; ClaimGone on 409, UserError on any other refusal or when retries run out."""
        data = json.dumps(body).encode() if body is not None else None
        headers = self._headers(**({"Content-Type": "application/json"} if data is not None else {}))
        reply = self._retried(f"{method} {path}", lambda: send(urllib.request.Request(
            f"{self.server}{path}", data=data, method=method, headers=headers), self.server))
        if reply.status != 200:
            raise UserError(f"{method} {path}: the server answered {reply.status}: {reply.error}")
        return reply.body

    def download(self, clip_id: int, claim: str, target: Path, sha256: str) -> None:
        """The clip's bytes, streamed into ``target``; UserError unless they hash to ``sha256``."""
        def attempt() -> Reply:
            request = urllib.request.Request(f"{self.server}/internal/v1/clips/{clip_id}/file",
                                             headers=self._headers(**{"X-Claim": claim}))
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response, target.open("wb") as out:
                    digest = hashlib.sha256()
                    while chunk := response.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            except urllib.error.HTTPError as exc:
                retry = exc.headers.get("Retry-After", "").strip() if exc.headers else ""
                return Reply(exc.code, {"error": f"HTTP {exc.code} {exc.reason}"},
                             float(retry) if retry.isdigit() else None)
            except OSError as exc:  # no connection, or the transfer was cut off: retried
                return Reply(0, {"error": f"cannot fetch from {self.server}: {exc}"})
            return Reply(200, {"sha256": digest.hexdigest()})

        reply = self._retried(f"clip {clip_id}", attempt)
        if reply.status != 200:
            raise UserError(f"clip {clip_id}: the download failed ({reply.error})")
        if reply.body["sha256"] != sha256:
            raise UserError(f"clip {clip_id}: the bytes received do not match the clip's sha256")


@dataclass
class _Heartbeat:
    """Renews a claim every third of its lease from its own thread until stopped."""

    client: InternalClient
    clip_id: int
    claim: str
    every: float
    stop: threading.Event = field(default_factory=threading.Event)
    lost: bool = False

    def __enter__(self) -> _Heartbeat:
        threading.Thread(target=self._run, name=f"heartbeat-{self.clip_id}", daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.client.call("POST", f"/internal/v1/clips/{self.clip_id}/heartbeat", {"claim": self.claim})
            except ClaimGone:
                self.lost = True
                return
            except UserError as exc:  # the server is away; the lease decides
                log.warning("clip %d: heartbeat failed: %s", self.clip_id, exc)


@dataclass
class RemoteWorker:
    settings: Settings
    client: InternalClient
    folder: Path

    def check_models(self) -> None:
        """Refuse to start with an embedder whose vectors the server would refuse."""
        server = self.client.call("GET", "/internal/v1/models")
        mine = vision.load_models(self.settings).embedder
        if server.get("embedder_version") != mine.version or server.get("dim") != mine.dim:
            raise UserError(f"this worker's embedder is {mine.version} ({mine.dim}), the server's is "
                            f"{server.get('embedder_version')} ({server.get('dim')}); set SEARCH_PARTY_EMBEDDER "
                            "and the model files to the server's")

    def run_clip(self, clip_id: int) -> str:
        """Process one clip the queue named; returns what became of it (for the log)."""
        path = f"/internal/v1/clips/{clip_id}"
        try:
            job = self.client.call("POST", f"{path}/claim")
        except ClaimGone:
            return "not queued: nothing to do"
        claim = job["claim"]
        target = self.folder / f"clip-{clip_id}-{secrets.token_hex(4)}{Path(job['filename']).suffix[:8]}"
        try:
            with _Heartbeat(self.client, clip_id, claim, max(1.0, job["lease_seconds"] / 3)) as beat:
                try:
                    self.client.download(clip_id, claim, target, job["sha256"])
                    start = datetime.fromisoformat(job["start_time"]) if job["start_time"] else None
                    result = process_clip(target, start_time=start,
                                          start_source=job["start_source"] or "given",
                                          models=vision.load_models(self.settings),
                                          options=IngestOptions(decode_threads=vision.decode_threads(
                                              self.settings.threads)))
                except (UserError, ImageError, ModelError) as exc:
                    self.client.call("POST", f"{path}/failure", {"claim": claim, "reason": failure_reason(exc)})
                    return f"failed: {failure_reason(exc)}"
                pause = pause_for_crash_tests(self.settings.test_pause_before_commit)
                if pause is not None:
                    pause()
                if beat.lost:
                    return "its claim was lost meanwhile; result discarded"
                stored = self.client.call("POST", f"{path}/result", {"claim": claim, "result": to_wire(result)})
            return f"done: {stored['sightings']} sighting(s)"
        except ClaimGone as exc:
            return f"no longer ours ({exc}); result discarded"
        finally:
            target.unlink(missing_ok=True)

    def task(self, clip_id: int) -> None:
        started = time.monotonic()
        try:
            outcome = self.run_clip(clip_id)
        except UserError as exc:  # the server refused or stayed away: the lease hands it on
            outcome = f"left to the lease: {exc}"
        log.info("clip %d %s (%.1f s)", clip_id, outcome, time.monotonic() - started)


def run_remote_worker(settings: Settings, server: str, token: str, folder: Path, workers: int = 1) -> None:
    """Consume the server's Redis queue until SIGINT (finish the clips in hand) or SIGTERM."""
    if not settings.redis_url:
        raise UserError("a remote worker takes its clips from the server's Redis: set SEARCH_PARTY_REDIS_URL")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("clip-*"):  # left by a killed run: the server re-queued those clips
        stale.unlink()
    worker = RemoteWorker(settings, InternalClient(server, token), folder)
    worker.check_models()
    queue = jobs.make_queue(settings, run=worker.task)
    log.info("remote worker for %s: %d at once, working in %s", server, workers, folder)
    queue.huey.create_consumer(workers=workers, worker_type="thread", periodic=False, initial_delay=0.1,
                               backoff=1.15, max_delay=2.0).run()
