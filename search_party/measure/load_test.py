"""A bounded load test on 127.0.0.1: the real app under many clients for a fixed time.

A scratch instance (its own data folder, deleted afterwards) is seeded through the domain API
with real data: the real puppy clip (``videos/pixabay_via_opencv_course``) ingested once and
stored as a sighting on every camera, pet owners' reports of that puppy (a frame of the clip is
the owner's photo) whose searches have asked every camera owner already.  Then the real server
(``search-party serve --no-worker``: waitress, 8 threads) starts in its own process, and client
threads, each signed in over HTTP as a real account or holding a camera's upload token, work
against it until the time is up:

- **searchers** (pet owners) report the puppy lost (the wizard's API: photo check, detection,
  embedding and the first search over the fence) up to their account's daily limit, and poll
  their search's status and shared sightings;
- **uploaders** (camera-side uploaders) send clips, each with its own content, with an upload token;
- **answerers** (camera owners) list their consent requests and share or decline each.

Afterwards every write a client was told succeeded is looked up in SQLite (clips with their
spooled bytes, reports, answers): anything missing is a lost write.  Any 5xx, refused connection
or traceback in the server's log is a failure.  Rate limits are off (SEARCH_PARTY_RATE_LIMITS=off),
as they would throttle the test itself; the domain's daily limits stay on.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
from PIL import Image
from pydantic import SecretStr

from search_party import vision
from search_party.community import accounts, camera_tokens, cameras, limits, reports, standing_searches
from search_party.config import ENV_PREFIX, Settings
from search_party.errors import UserError
from search_party.ingest.pipeline import process_clip
from search_party.measure.local_redis import free_port
from search_party.store import storage
from search_party.store.db import open_db, utcnow
from search_party.store.vector_index import VectorIndex

CLIP = Path("videos/pixabay_via_opencv_course/dog_puppy_indoor_4s_480p.mp4")
PLACE = (51.5007, -0.1246)  # the pet owners' last-seen point; cameras stand about 170 m from it
PASSWORD = "load test passphrase, long enough"
REQUEST_TIMEOUT_S = 120
SEED_REPORTS = 5  # each asks every camera: a camera's daily quota of requests for the answerers
KINDS = ("report", "status", "sightings", "upload", "requests", "answer")
_CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class Sample:
    kind: str
    status: int  # 0 when the connection itself failed
    ms: float


@dataclass
class LoadResult:
    seconds: float
    clients: int
    roles: dict[str, int]
    samples: list[Sample]
    lost_writes: list[str] = field(default_factory=list)
    server_tracebacks: int = 0

    @property
    def server_errors(self) -> int:
        """5xx answers and failed connections."""
        return sum(s.status >= 500 or s.status == 0 for s in self.samples)

    @property
    def passed(self) -> bool:
        return self.server_errors == 0 and not self.lost_writes and self.server_tracebacks == 0

    def rows(self) -> list[dict]:
        out = []
        for kind in KINDS + ("all",):
            times = np.array([s.ms for s in self.samples if kind in ("all", s.kind)])
            if not len(times):
                continue
            statuses = [s.status for s in self.samples if kind in ("all", s.kind)]
            out.append({"kind": kind, "requests": len(times),
                        "4xx": sum(400 <= s < 500 for s in statuses),
                        "5xx": sum(s >= 500 or s == 0 for s in statuses),
                        "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                        "max_ms": float(times.max())})
        return out

    def as_dict(self) -> dict:
        return {"seconds": self.seconds, "clients": self.clients, "roles": self.roles,
                "requests_per_second": len(self.samples) / self.seconds, "rows": self.rows(),
                "lost_writes": self.lost_writes, "server_tracebacks": self.server_tracebacks,
                "passed": self.passed}

    def table(self) -> str:
        header = ("request", "count", "4xx", "5xx", "p50 ms", "p95 ms", "max ms")
        lines = [header] + [(r["kind"], str(r["requests"]), str(r["4xx"]), str(r["5xx"]), f"{r['p50_ms']:.0f}",
                             f"{r['p95_ms']:.0f}", f"{r['max_ms']:.0f}") for r in self.rows()]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
                for line in lines]
        roles = ", ".join(f"{n} {role}" for role, n in self.roles.items())
        text += ["", f"{len(self.samples)} requests in {self.seconds:.0f} s ({len(self.samples) / self.seconds:.1f}/s) "
                 f"from {self.clients} clients ({roles}) on 127.0.0.1; {os.cpu_count()} CPUs",
                 f"lost writes: {len(self.lost_writes)}; server errors (5xx or refused): {self.server_errors}; "
                 f"tracebacks in the server log: {self.server_tracebacks}",
                 f"verdict: {'PASS' if self.passed else 'FAIL'}"]
        text += [f"  lost: {what}" for what in self.lost_writes[:20]]
        return "\n".join(text)


# ---------------------------------------------------------------- HTTP, stdlib only


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, mime) in files.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                  f"Content-Type: {mime}\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class _Client:
    """One browser-like client: its own cookies, its CSRF token, its samples."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.samples: list[Sample] = []

    def call(self, kind: str | None, method: str, path: str, *, body: bytes | None = None,
             content_type: str | None = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                status, data = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        except OSError:
            status, data = 0, b""
        if kind is not None:
            self.samples.append(Sample(kind, status, (time.perf_counter() - started) * 1000))
        return status, data

    def sign_in(self, email: str) -> None:
        status, page = self.call(None, "GET", "/login")
        token = _CSRF_META.search(page.decode())
        form = urllib.parse.urlencode({"email": email, "password": PASSWORD,
                                       "csrf_token": token.group(1) if token else ""}).encode()
        status, _ = self.call(None, "POST", "/login", body=form, content_type="application/x-www-form-urlencoded")
        _, data = self.call(None, "GET", "/api/csrf")
        if status >= 400 or not data.startswith(b"{"):
            raise UserError(f"the load test could not sign in as {email} (HTTP {status})")
        self.headers["X-CSRFToken"] = json.loads(data)["csrf_token"]

    def json(self, kind: str, method: str, path: str, payload: dict | None = None) -> tuple[int, dict]:
        body = json.dumps(payload).encode() if payload is not None else None
        status, data = self.call(kind, method, path, body=body,
                                 content_type="application/json" if body is not None else None)
        try:
            return status, json.loads(data) if data else {}
        except ValueError:
            return status, {}


# ---------------------------------------------------------------- the scratch instance


@dataclass
class _World:
    settings: Settings
    clip: bytes
    photo: bytes
    searchers: list[str]  # e-mails
    answerers: list[str]
    upload_cameras: list[tuple[int, str]]  # (camera id, upload token)


def _owner_photo(clip: Path) -> bytes:
    """A frame from the middle of the clip, as the owner's JPEG photo of the puppy."""
    with av.open(str(clip)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    out = io.BytesIO()
    Image.fromarray(frames[len(frames) // 2]).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _seed(settings: Settings, clip_path: Path, searchers: int, answerers: int, uploaders: int) -> _World:
    models = vision.load_models(settings)
    now = utcnow()
    result = process_clip(clip_path, start_time=now - timedelta(minutes=30), models=models)
    if not result.sightings:
        raise UserError(f"{clip_path} gave no sighting; the load test needs its puppy")
    clip = clip_path.read_bytes()
    sha = hashlib.sha256(clip).hexdigest()
    with open_db(settings.db_path) as db:
        placed = []
        for n in range(answerers + uploaders):
            email = f"neighbour{n}@load.invalid"
            owner = accounts.create_user(db, email, PASSWORD if n < answerers else None)
            lat, lon = PLACE[0] + 0.0015 * np.cos(n), PLACE[1] + 0.0025 * np.sin(n)
            added = cameras.register_camera(db, owner.id, lat=lat, lon=lon, name=f"camera {n}")
            camera = cameras.opt_in(db, added.id, owner.id)
            stored, _ = storage.create_clip(db, camera.id, sha, clip_path.name, len(clip))
            storage.claim_clip(db, stored.id, "load-test")
            storage.save_clip_result(db, stored.id, result, "load-test")
            placed.append((camera, email))
        photo = _owner_photo(clip_path)
        for n in range(SEED_REPORTS):
            owner = accounts.create_user(db, f"seed{n}@load.invalid")
            report, _ = reports.create_lost_report(
                db, owner.id, pet_name=f"Seed {n}", species="dog", photos=[photo], lat=PLACE[0], lon=PLACE[1],
                last_seen=now - timedelta(hours=1), models=models)
            index = VectorIndex.open(db, settings.index_path, models.embedder.version, models.embedder.dim)
            standing_searches.search_report(db, report.id, index)
        asked = db.execute("SELECT count(*) FROM matches WHERE state = 'asked'").fetchone()[0]
        if asked == 0:
            raise UserError("the seeded searches asked no camera owner; the load test has nothing to answer")
        for n in range(searchers):
            accounts.create_user(db, f"owner{n}@load.invalid", PASSWORD)
        tokens = [(camera.id, camera_tokens.create_token(db, camera.id, camera.owner_id, "load test")[1])
                  for camera, _ in placed[answerers:]]
    return _World(settings, clip, photo, [f"owner{n}@load.invalid" for n in range(searchers)],
                  [email for _, email in placed[:answerers]], tokens)


class ScratchServer:
    """``search-party serve --no-worker`` on the scratch data folder, in its own process."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        served = settings.model_copy(update={"secret_key": SecretStr(secrets.token_hex(32)),
                                             "rate_limits": False, "public_url": self.base})
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)},
               **served.as_environment()}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "search_party.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-worker"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UserError(f"the server stopped at start-up: {self.log.read_text()[-500:]}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise UserError(f"the server did not answer /healthz within {timeout_s:.0f} s")

    def stop(self) -> int:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text(errors="replace").count("Traceback (most recent call last)")


# ---------------------------------------------------------------- what the clients do


def _report(client: _Client, world: _World, made: list[int]) -> None:
    """Report the puppy lost through the wizard's API, which also runs the first search."""
    body, kind = _multipart(
        {"pet_name": f"Pup {uuid.uuid4().hex[:6]}", "species": "dog", "lat": str(PLACE[0]),
         "lon": str(PLACE[1]), "radius_m": "1000", "last_seen": (utcnow() - timedelta(hours=1)).isoformat()},
        {"photos": ("puppy.jpg", world.photo, "image/jpeg")})
    status, data = client.call("report", "POST", "/api/reports", body=body, content_type=kind)
    if status == 201:
        made.append(json.loads(data)["report"]["id"])


def _search_loop(client: _Client, world: _World, deadline: float, made: list[int]) -> None:
    """Report the puppy lost (up to the account's daily limit), and keep reading the search's
    status and shared sightings."""
    polls = 0
    while time.monotonic() < deadline:
        if len(made) < limits.SEARCHES_PER_DAY and polls % 4 == 0:
            _report(client, world, made)
        elif made:
            report_id = made[polls % len(made)]
            client.json("status" if polls % 2 else "sightings", "GET",
                        f"/api/reports/{report_id}" + ("" if polls % 2 else "/sightings"))
        polls += 1


def _upload_loop(client: _Client, world: _World, camera_id: int, deadline: float,
                 sent: list[tuple[int, str]]) -> None:
    while time.monotonic() < deadline:
        content = world.clip + uuid.uuid4().bytes  # its own content, so never a duplicate
        body, kind = _multipart({}, {"clip": (f"cam-{uuid.uuid4().hex[:8]}.mp4", content, "video/mp4")})
        status, data = client.call("upload", "POST", f"/api/cameras/{camera_id}/clips", body=body, content_type=kind)
        if status == 201:
            sent.append((json.loads(data)["clips"][0]["id"], hashlib.sha256(content).hexdigest()))


def _answer_loop(client: _Client, deadline: float, answered: list[tuple[int, str]]) -> None:
    while time.monotonic() < deadline:
        status, body = client.json("requests", "GET", "/api/requests")
        waiting = body.get("requests", []) if status == 200 else []
        if not waiting:
            time.sleep(0.05)  # a person reads the page before the next look
        for item in waiting:
            if time.monotonic() >= deadline:
                break
            share = item["match_id"] % 2 == 0
            status, reply = client.json("answer", "POST",
                                        f"/api/requests/{item['match_id']}/{'share' if share else 'decline'}", {})
            if status == 200:
                answered.append((item["match_id"], reply["state"]))


def _lost_writes(settings: Settings, reports_made: list[int], uploads: list[tuple[int, str]],
                 answers: list[tuple[int, str]]) -> list[str]:
    lost = []
    with open_db(settings.db_path) as db:
        for report_id in reports_made:
            if not db.execute("SELECT 1 FROM lost_reports WHERE id = ?", [report_id]).fetchone():
                lost.append(f"lost report {report_id}")
        for clip_id, sha in uploads:
            row = db.execute("SELECT sha256, spool_name FROM clips WHERE id = ?", [clip_id]).fetchone()
            if row is None or row[0] != sha or not row[1] or not (settings.spool_dir / row[1]).is_file():
                lost.append(f"clip {clip_id}")
        for match_id, state in answers:
            row = db.execute("SELECT state FROM matches WHERE id = ?", [match_id]).fetchone()
            if row is None or row[0] != state:
                lost.append(f"answer {state} to request {match_id}")
    return lost


def roles_for(clients: int) -> dict[str, int]:
    """Clients by role: about half searching, a quarter uploading, a quarter answering."""
    if clients < 3:
        raise UserError("the load test needs at least 3 clients: one searcher, one uploader, one answerer")
    uploaders = max(1, clients // 4)
    answerers = max(1, clients // 4)
    return {"searchers": clients - uploaders - answerers, "uploaders": uploaders, "answerers": answerers}


def run_load(data_dir: Path, settings: Settings, *, seconds: float, clients: int,
             work_dir: Path | None = None) -> LoadResult:
    """Seed a scratch instance from ``data_dir`` (see the module notes), serve it on 127.0.0.1,
    run ``clients`` clients for ``seconds``, and check every acknowledged write."""
    clip = data_dir / CLIP
    if not clip.is_file():
        raise UserError(f"{clip} is missing; pass the shared data folder (../shared/data)")
    roles = roles_for(clients)
    work = Path(tempfile.mkdtemp(prefix="load-test-", dir=work_dir))
    server = None
    try:
        scratch = settings.moved_to(work / "data")
        scratch.prepare_dirs()
        world = _seed(scratch, clip, roles["searchers"], roles["answerers"], roles["uploaders"])
        server = ScratchServer(scratch, work / "server.log")
        server.wait_ready()
        searchers = [_Client(server.base) for _ in world.searchers]
        answerers = [_Client(server.base) for _ in world.answerers]
        for client, email in [*zip(searchers, world.searchers), *zip(answerers, world.answerers)]:
            client.sign_in(email)
        uploaders = [_Client(server.base, token) for _, token in world.upload_cameras]
        made: list[list[int]] = [[] for _ in searchers]
        sent: list[tuple[int, str]] = []
        answered: list[tuple[int, str]] = []
        # One report before the clock starts loads the models in the server (a cold start is
        # not what is measured); it counts towards that account's daily limit.
        _report(searchers[0], world, made[0])
        searchers[0].samples.clear()
        deadline = time.monotonic() + seconds
        threads = ([threading.Thread(target=_search_loop, args=(c, world, deadline, m))
                    for c, m in zip(searchers, made)]
                   + [threading.Thread(target=_upload_loop, args=(c, world, cam, deadline, sent))
                      for c, (cam, _) in zip(uploaders, world.upload_cameras)]
                   + [threading.Thread(target=_answer_loop, args=(c, deadline, answered)) for c in answerers])
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        tracebacks = server.stop()
        server = None
        samples = [s for c in (*searchers, *uploaders, *answerers) for s in c.samples]
        lost = _lost_writes(scratch, [i for m in made for i in m], sent, answered)
        return LoadResult(elapsed, clients, roles, samples, lost, tracebacks)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
