"""The task queue and the worker: huey, on SQLite under the data dir by default, or Redis.

The queue only carries clip ids, and a clip id stands for one camera's content hash (the clips
table holds each camera/sha256 pair once), so the task is idempotent per content.  The clips
table, not the queue, is the source of truth for what still needs doing.  Huey removes a message
when a worker takes it, so a worker killed mid-clip takes that message with it: that is why every
worker start (and a periodic check while workers run) looks for clips left ``processing`` by a
worker that is gone, puts them back to ``queued``, and enqueues every queued clip the queue does
not hold.  Running a clip twice is harmless: a task first claims
its clip (queued -> processing, one atomic UPDATE), a second task finds nothing to claim, and only
the current claim may store a result.  A clip that has killed its worker ``max_attempts`` times is
failed with a reason instead of crashing workers forever.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper
from sqlite_utils import Database

from search_party import disk_space, vision
from search_party.community import notifications, retention, standing_searches
from search_party.config import Settings
from search_party.errors import UserError
from search_party.ingest import clip_task, spool
from search_party.store import storage
from search_party.store.db import from_db_time, open_db, utcnow
from search_party.store.vector_index import VectorIndex

log = logging.getLogger(__name__)

QUEUE_NAME = "search-party"
TASK_NAME = "ingest_clip"
# A claim older than this is presumed dead even if its worker is on another host (where we cannot
# see its process); far longer than the longest clip allowed takes.  Storing is safe anyway: the
# old claim can no longer commit once the clip is re-queued.
CLAIM_TIMEOUT = timedelta(hours=1)
# A remote worker's claim: ``remote#<worker token id>:<nonce>`` ('#' is in no host name).
REMOTE_CLAIM_PREFIX = "remote#"


# ---------------------------------------------------------------- claims


def new_claim() -> str:
    """A token naming this process and attempt: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def claim_is_dead(claim: str | None, claimed_at_age: timedelta,
                  lease: timedelta = timedelta(seconds=60)) -> bool:
    """Whether the worker holding ``claim`` is certainly gone (same host, no such process), has
    held it for longer than CLAIM_TIMEOUT, or is a remote worker that has not renewed its claim
    for ``lease`` (search_party.ingest.remote_intake: its claimed time is renewed by heartbeats)."""
    if claim is None or claimed_at_age > CLAIM_TIMEOUT:
        return True
    if claim.startswith(REMOTE_CLAIM_PREFIX):
        return claimed_at_age > lease
    host, _, rest = claim.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return not _pid_alive(int(pid_text))


# ---------------------------------------------------------------- the queue


@dataclass
class JobQueue:
    """The huey instance for some settings, with the ingest task registered on it."""

    huey: Huey
    ingest_task: TaskWrapper

    def enqueue(self, clip_id: int) -> None:
        self.ingest_task(clip_id)

    def pending_clip_ids(self) -> set[int]:
        """Clip ids whose task message is waiting in the queue."""
        name = self.ingest_task.name
        return {task.args[0] for task in self.huey.pending() if task.name == name}


def make_queue(settings: Settings, run: Callable[[int], None] | None = None) -> JobQueue:
    """The queue for these settings, with the ingest task registered (the same in the process that
    enqueues and in the worker).  ``run(clip_id)`` replaces the task's body: a remote worker's
    (search_party.ingest.remote_worker), under the same task name so it takes the same messages."""
    if settings.redis_url:
        try:
            import redis  # noqa: F401  (RedisHuey needs it; say so before the first enqueue)
        except ImportError:
            raise UserError("SEARCH_PARTY_REDIS_URL is set but the redis package is missing; "
                            "install it (pip install redis) or unset the variable") from None
        huey: Huey = RedisHuey(QUEUE_NAME, url=settings.redis_url, results=False)
    else:
        settings.prepare_dirs()
        huey = SqliteHuey(QUEUE_NAME, filename=str(settings.queue_path), results=False)

    @huey.task(name=TASK_NAME)
    def ingest_clip(clip_id: int) -> None:
        if run is not None:
            run(clip_id)
            return
        if _paused(settings, f"clip {clip_id} stays queued"):
            return  # still queued in SQLite: the recovery enqueues it again once there is room
        clip_task.run_clip(settings, clip_id, new_claim())

    @huey.on_startup(name="load_models")
    def load_models() -> None:
        vision.load_models(settings)  # once per worker, before its first clip

    return JobQueue(huey, ingest_clip)


def upkeep(settings: Settings, queue: JobQueue) -> None:
    """The server's periodic work (search-party worker runs it every SEARCH_PARTY_UPKEEP_SECONDS):
    recover clips dead workers left, rewrite the index file once it lags the database enough that
    a server's side index grows (VectorIndex.compact; servers catch up from SQLite meanwhile),
    expiry and purging, standing searches catching up on anything the ingest hook missed, consent
    requests held back by a camera's daily quota, then the e-mails all that made.

    Not a huey periodic task: those travel through the queue, and with remote workers on Redis
    any consumer, one with no database, could take them."""
    with open_db(settings.db_path) as db:
        recover(settings, db, queue)
        if not _paused(settings, "the index file is not rewritten"):
            embedder = vision.load_models(settings).embedder
            VectorIndex.compact(db, settings.index_path, embedder.version, embedder.dim)
        retention.run(db, index_path=settings.index_path)
        standing_searches.rescore_new_sightings(db)
        notifications.deliver_pending(db, notifications.mailer_for(settings))


def _upkeep_forever(settings: Settings, queue: JobQueue, stop: threading.Event) -> None:
    while not stop.wait(settings.upkeep_seconds):
        try:
            upkeep(settings, queue)
        except Exception:  # one bad round (a locked file, a mail server down) must not end upkeep
            log.exception("upkeep failed; trying again in %d s", settings.upkeep_seconds)


def _paused(settings: Settings, what: str) -> bool:
    """Whether the disk is too full for the worker to write (search_party/disk_space.py)."""
    disk = disk_space.state(settings)
    if disk.worker_paused:
        log.warning("worker paused, %s: %s", what, "; ".join(disk.problems()))
    return disk.worker_paused


@dataclass
class Recovery:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    enqueued: list[int] = field(default_factory=list)
    spool_removed: list[str] = field(default_factory=list)


def recover(settings: Settings, db: Database, queue: JobQueue) -> Recovery:
    """Put back clips whose worker died, enqueue queued clips the queue lost, and clear the spool
    of files no clip waits for."""
    report = Recovery()
    now = utcnow()
    for row in db.query("SELECT id, claimed_by, claimed_at, attempts FROM clips WHERE status = 'processing'"):
        age = now - from_db_time(row["claimed_at"]) if row["claimed_at"] else CLAIM_TIMEOUT * 2
        if not claim_is_dead(row["claimed_by"], age, timedelta(seconds=settings.worker_lease_seconds)):
            continue
        if row["attempts"] >= settings.max_attempts:
            reason = (f"the worker stopped {row['attempts']} times while processing this clip (killed, "
                      "or out of memory?); volunteer it again to retry")
            if storage.fail_clip(db, row["id"], reason, claim=row["claimed_by"]):
                report.failed.append(row["id"])
        elif storage.requeue_clip(db, row["id"], row["claimed_by"]):
            report.requeued.append(row["id"])
    pending = queue.pending_clip_ids()
    paused = _paused(settings, "queued clips are not handed out")
    for clip in [] if paused else storage.list_clips(db, status="queued"):
        if clip.id not in pending:
            queue.enqueue(clip.id)
            report.enqueued.append(clip.id)
    report.spool_removed = spool.clean(settings, db)
    if report.requeued or report.failed:
        log.warning("recovered clips left by dead workers: requeued %s, failed %s",
                    report.requeued, report.failed)
    return report


# ---------------------------------------------------------------- the worker


def run_worker(settings: Settings, workers: int = 1, worker_type: str = "thread", *,
               ingest: bool = True) -> None:
    """Recover what dead workers left, then consume the queue until SIGINT (finish the current
    clips) or SIGTERM (stop now; the clips in hand are recovered at the next start), running the
    server's upkeep beside it.  With ``ingest`` False only the upkeep runs: the server of a metro
    whose clips remote workers process (search_party.ingest.remote_worker)."""
    queue = make_queue(settings)
    with open_db(settings.db_path) as db:
        report = recover(settings, db, queue)
    log.info("worker starting: %d clip(s) requeued, %d failed, %d enqueued, %d spool file(s) removed",
             len(report.requeued), len(report.failed), len(report.enqueued), len(report.spool_removed))
    stop = threading.Event()
    if not ingest:
        log.info("upkeep only, every %d s; clips are left to remote workers", settings.upkeep_seconds)
        try:
            _upkeep_forever(settings, queue, stop)
        except KeyboardInterrupt:
            return
    upkeeper = threading.Thread(target=_upkeep_forever, args=(settings, queue, stop), name="upkeep", daemon=True)
    upkeeper.start()
    consumer = queue.huey.create_consumer(workers=workers, worker_type=worker_type, periodic=False,
                                          initial_delay=0.1, backoff=1.15, max_delay=2.0)
    try:
        consumer.run()
    finally:
        stop.set()
