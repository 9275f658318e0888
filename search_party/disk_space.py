"""Room on the disks that hold the data, and what is refused or paused when it runs low.

Nothing else stands between an upload token (which may send many clips an hour, each up to
SEARCH_PARTY_MAX_UPLOAD_MB) and a full disk, and SQLite, the index file and the spool all fail
badly on one.  So, on the disk with the least free space among those holding the data folder,
the database and the index:

- an **upload is refused** (``InsufficientStorage``, answered 507) when storing it would leave
  less than SEARCH_PARTY_MIN_FREE_DISK_MB free;
- the **worker pauses** (its clips stay queued, and the index file is not rewritten) when less
  than half of that is free.  Between half and the floor it keeps going: each processed clip
  frees its spooled file, so the worker drains what the refused uploads no longer fill;
- ``/healthz`` says which of the two is happening and why (search_party/health.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from search_party.config import Settings
from search_party.errors import InsufficientStorage

MB = 1024 * 1024


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (a folder not made yet is on its parent's disk)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(settings: Settings) -> int:
    """The least free space (for unprivileged writers) among the disks that hold the data."""
    places = {_existing(p) for p in (settings.data_dir, settings.spool_dir, settings.db_path.parent,
                                     settings.index_path.parent)}
    return min(disk.f_bavail * disk.f_frsize for disk in map(os.statvfs, places))


@dataclass(frozen=True)
class DiskState:
    """Free space beside the floor, and what that means for uploads and the worker."""

    free_bytes: int
    floor_bytes: int

    @property
    def uploads_refused(self) -> bool:
        return self.free_bytes < self.floor_bytes

    @property
    def worker_paused(self) -> bool:
        return self.free_bytes < self.floor_bytes / 2

    @property
    def ok(self) -> bool:
        return not self.uploads_refused

    def problems(self) -> list[str]:
        """Why uploads are refused and the worker paused, for the operator (no paths)."""
        free, floor = self.free_bytes / MB, self.floor_bytes / MB
        out = []
        if self.uploads_refused:
            out.append(f"disk low: {free:,.0f} MB free, under the {floor:,.0f} MB floor "
                       "(SEARCH_PARTY_MIN_FREE_DISK_MB): uploads are refused")
        if self.worker_paused:
            out.append(f"disk very low: {free:,.0f} MB free, under half the floor: the worker is "
                       "paused and clips stay queued until space is freed")
        return out

    def as_dict(self) -> dict:
        return {"free_mb": round(self.free_bytes / MB), "floor_mb": round(self.floor_bytes / MB),
                "uploads_refused": self.uploads_refused, "worker_paused": self.worker_paused,
                "problems": self.problems()}


def state(settings: Settings) -> DiskState:
    return DiskState(free_bytes(settings), int(settings.min_free_disk_mb * MB))


def check_room(settings: Settings, incoming_bytes: int) -> None:
    """Refuse (InsufficientStorage) an upload of ``incoming_bytes`` that would leave less than
    the floor free."""
    disk = state(settings)
    if disk.free_bytes - incoming_bytes < disk.floor_bytes:
        raise InsufficientStorage(
            "this server is nearly out of disk space, so it is not accepting clips now; nothing was "
            "stored. Try again later; if it lasts, tell the person who runs this server")
