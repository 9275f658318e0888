"""What an operator (or the landing page) needs to know: are the models and the store usable, and
is there room on the disk (``disk``: uploads refused, worker paused; search_party/disk_space.py)."""

from __future__ import annotations

from dataclasses import dataclass

from embeddings import registry
from search_party import disk_space
from search_party.config import Settings


@dataclass(frozen=True)
class Health:
    ok: bool
    models: dict[str, bool]
    problems: list[str]


def check(settings: Settings) -> Health:
    rows = registry.status(settings.vision_runtime())
    problems = [r.problem for r in rows if r.problem]
    return Health(ok=not problems, models={r.name: r.verified for r in rows}, problems=problems)


def disk(settings: Settings) -> disk_space.DiskState:
    """Room on the data's disks, read afresh on every call (one statvfs per disk): whether uploads
    are refused or the worker paused, and why."""
    return disk_space.state(settings)
