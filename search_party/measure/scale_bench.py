"""`search-party bench scale`: clips per minute with 1, 2, 3... remote ingest workers, and what
each clip costs the server, on this machine with real parts.

A scratch instance (its own data folder, deleted afterwards) is served by the real server
(``search-party serve --no-worker`` in its own process: measure.load_test.ScratchServer), with a
throw-away redis-server (measure.local_redis).  For each worker count, that many
``search-party worker --remote`` processes start, each with its own empty folder, and load their
models; only then are ``clips`` fresh copies of the real clip queued (each copy with a tag after
its last box, so each has its own content hash) and the clock runs until every one is stored.

The server's CPU per clip (user + system seconds of its process, from /proc, over the run,
divided by the clips) is everything a clip costs it once uploaded: the claim, streaming the clip
to the worker, heartbeats, checking and storing the result.  It bounds how many workers one
server feeds: one server core takes about 1000 / (ms per clip) clips a second.  The workers
share this machine's cores with each other (and with the server), so on two cores the curve
flattens at two workers; the cores are printed beside it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from search_party.community import accounts, cameras
from search_party.config import ENV_PREFIX, Settings
from search_party.errors import UserError
from search_party.ingest import jobs, spool, worker_tokens
from search_party.measure.load_test import ScratchServer
from search_party.measure.local_redis import local_redis
from search_party.store import storage
from search_party.store.db import open_db

READY_LINE = "remote worker for"
START_TIMEOUT_S = 300
RUN_TIMEOUT_S = 1800


@dataclass(frozen=True)
class ScaleRow:
    workers: int
    clips: int
    seconds: float
    server_cpu_seconds: float
    failed: int

    @property
    def clips_per_minute(self) -> float:
        return self.clips / self.seconds * 60

    @property
    def server_ms_per_clip(self) -> float:
        return self.server_cpu_seconds / self.clips * 1000

    def as_dict(self) -> dict[str, float | int]:
        return {"workers": self.workers, "clips": self.clips, "seconds": round(self.seconds, 2),
                "clips_per_minute": round(self.clips_per_minute, 1),
                "server_cpu_ms_per_clip": round(self.server_ms_per_clip, 1), "failed": self.failed}


def table(rows: list[ScaleRow], clip: Path, cores: int) -> str:
    lines = [f"clip: {clip.name}; this machine: {cores} core(s), shared by the server, Redis and every worker",
             "workers  clips  seconds  clips/min  speed-up  server CPU ms/clip  failed"]
    base = rows[0].clips_per_minute if rows else 1.0
    for row in rows:
        lines.append(f"{row.workers:7d}  {row.clips:5d}  {row.seconds:7.1f}  {row.clips_per_minute:9.1f}  "
                     f"{row.clips_per_minute / base:7.2f}x  {row.server_ms_per_clip:18.1f}  {row.failed:6d}")
    return "\n".join(lines)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _copies(clip: Path, folder: Path, tag: str, count: int) -> list[Path]:
    """The real clip ``count`` times, each with a tag after its last box (players ignore it)."""
    data = clip.read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"{tag}-{n:04d}{clip.suffix}"
        path.write_bytes(data + f"search-party bench scale {tag} {n}".encode())
        paths.append(path)
    return paths


def _start_workers(server: Settings, base: str, secrets: list[str], work: Path) -> list[tuple[subprocess.Popen, Path]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    started = []
    for n, secret in enumerate(secrets):
        folder = work / f"worker-{n}"
        log = work / f"worker-{n}.log"
        worker_env = {**env, f"{ENV_PREFIX}DATA_DIR": str(folder), f"{ENV_PREFIX}MODEL_CACHE": str(server.cache_dir),
                      f"{ENV_PREFIX}DETECTOR": server.detector, f"{ENV_PREFIX}EMBEDDER": server.embedder,
                      f"{ENV_PREFIX}REDIS_URL": str(server.redis_url), f"{ENV_PREFIX}WORKER_TOKEN": secret}
        if server.model_dir:
            worker_env[f"{ENV_PREFIX}MODEL_DIR"] = str(server.model_dir)
        proc = subprocess.Popen([sys.executable, "-m", "search_party.cli", "worker", "--remote", base, "--plain-http"],
                                env=worker_env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        started.append((proc, log))
    deadline = time.monotonic() + START_TIMEOUT_S
    for proc, log in started:
        while READY_LINE not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop_workers(started)
                raise UserError(f"a remote worker did not start: {log.read_text(errors='replace')[-800:]}")
            time.sleep(0.2)
    return started


def _stop_workers(workers: list[tuple[subprocess.Popen, Path]]) -> None:
    for proc, _ in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc, _ in workers:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_scale(clip: Path, settings: Settings, *, counts: list[int], clips: int,
              work_dir: Path | None = None) -> list[ScaleRow]:
    """One row per worker count in ``counts``, each over ``clips`` fresh copies of ``clip``."""
    if not clip.is_file():
        raise UserError(f"{clip} is not a file")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=work_dir))
    rows = []
    try:
        with local_redis() as redis_url:
            scratch = settings.moved_to(work / "server").model_copy(update={"redis_url": redis_url})
            scratch.prepare_dirs()
            with open_db(scratch.db_path) as db:
                owner = accounts.create_user(db, "bench@example.org")
                camera = cameras.opt_in(db, cameras.register_camera(db, owner.id, lat=51.5, lon=-0.12).id, owner.id)
                secrets = [worker_tokens.create_token(db, f"bench-{n}")[1] for n in range(max(counts))]
            server = ScratchServer(scratch, work / "server.log")
            try:
                server.wait_ready()
                queue = jobs.make_queue(scratch)
                for count in counts:
                    rows.append(_one_run(scratch, server, queue, camera.id, clip, secrets[:count], clips, work))
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _one_run(scratch: Settings, server: ScratchServer, queue: jobs.JobQueue, camera_id: int, clip: Path,
             secrets: list[str], clips: int, work: Path) -> ScaleRow:
    run_dir = work / f"run-{len(secrets)}"
    paths = _copies(clip, run_dir / "clips", f"w{len(secrets)}", clips)
    with open_db(scratch.db_path) as db:
        ids = [spool.register_clip(scratch, db, path, camera_id).clip.id for path in paths]
        workers = _start_workers(scratch, server.base, secrets, run_dir)
        try:
            cpu_before, started = _cpu_seconds(server.process.pid), time.monotonic()
            for clip_id in ids:
                queue.enqueue(clip_id)
            deadline = started + RUN_TIMEOUT_S
            while True:
                left = db.execute(
                    f"SELECT count(*) FROM clips WHERE status IN ('queued', 'processing') AND id IN "
                    f"({', '.join('?' * len(ids))})", ids).fetchone()[0]
                if not left:
                    break
                if time.monotonic() > deadline:
                    raise UserError(f"{left} clip(s) were still not stored after {RUN_TIMEOUT_S} s")
                time.sleep(0.1)
            seconds = time.monotonic() - started
            cpu = _cpu_seconds(server.process.pid) - cpu_before
        finally:
            _stop_workers(workers)
        failed = sum(1 for clip_id in ids if storage.get_clip(db, clip_id).status == "failed")
    return ScaleRow(len(secrets), clips, seconds, cpu, failed)
