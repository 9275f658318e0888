"""What an operator (or the landing page, or a load balancer's /healthz) needs to know: is this
server able to do its work.

A ``Health`` is a list of named ``Check``s, each ok or not, with a ``message`` anyone may read
(no paths, no file names) and, when something is wrong, a ``detail`` for the operator only (the
log, `search-party models`).  A new concern is one more function returning a ``Check``, added to
``CHECKS``.

Checking the models means hashing every file the server loads (~37 MB), so it is never done per
request: a ``Monitor`` verifies once when the server starts (``refresh``) and then again in the
background when its answer is older than ``RECHECK_EVERY`` (``current`` never waits for it).
Room on the disk (``disk``: uploads refused, worker paused; search_party/disk_space.py) is
cheap to read, so it is read afresh on every call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from embeddings import registry
from search_party import disk_space
from search_party.config import Settings
from search_party.errors import ModelError
from search_party.vision import model_files

log = logging.getLogger(__name__)

RECHECK_EVERY = timedelta(minutes=15)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str  # for anyone: says what is wrong, never where
    detail: str | None = None  # for the operator (paths, hashes); never sent to a client


@dataclass(frozen=True)
class Health:
    checks: tuple[Check, ...]
    checked_at: datetime = field(default_factory=_now)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def public(self) -> dict[str, object]:
        """The answer any client may see (/healthz): each check's state and message."""
        return {"ok": self.ok, "checked_at": self.checked_at.isoformat(),
                "checks": {c.name: {"ok": c.ok, "message": c.message} for c in self.checks}}


def models_check(settings: Settings) -> Check:
    """Every model file this server loads is present and verified by sha256."""
    runtime = settings.vision_runtime()
    needed = model_files(settings)
    problems = []
    for name in needed:
        try:
            registry.locate(name, runtime)
        except ModelError as exc:
            problems.append(str(exc))
    if problems:
        return Check("models", False, f"{len(problems)} of {len(needed)} model files are missing or altered; "
                                      "the operator can see which with `search-party models`",
                     "; ".join(problems))
    return Check("models", True, "every model file is present and verified")


CHECKS: tuple[Callable[[Settings], Check], ...] = (models_check,)


def check(settings: Settings) -> Health:
    """Run every check now (slow: it hashes the model files)."""
    health = Health(tuple(run(settings) for run in CHECKS))
    for failed in (c for c in health.checks if not c.ok):
        log.warning("health check %s failed: %s", failed.name, failed.detail or failed.message)
    return health


class Monitor:
    """The last health answer, kept in memory and refreshed in the background when stale."""

    def __init__(self, settings: Settings, recheck_every: timedelta = RECHECK_EVERY) -> None:
        self.settings = settings
        self.recheck_every = recheck_every
        self._health: Health | None = None
        self._lock = threading.Lock()
        self._checking = False

    def refresh(self) -> Health:
        """Check now and keep the answer (at start, and from the background re-check)."""
        health = check(self.settings)
        with self._lock:
            self._health = health
            self._checking = False
        return health

    def current(self) -> Health:
        """The kept answer; the first call checks (once), later ones start a background re-check
        when the answer is older than ``recheck_every`` and answer from memory meanwhile."""
        with self._lock:
            health, stale = self._health, False
            if health is not None and not self._checking:
                stale = _now() - health.checked_at >= self.recheck_every
                self._checking = stale
        if health is None:
            return self.refresh()
        if stale:
            threading.Thread(target=self.refresh, name="health-recheck", daemon=True).start()
        return health


def disk(settings: Settings) -> disk_space.DiskState:
    """Room on the data's disks, read afresh on every call (one statvfs per disk): whether uploads
    are refused or the worker paused, and why."""
    return disk_space.state(settings)
