"""Advisory file locks that say "a live process is using this", so clean-ups leave it alone.

Uploads being received, clips being copied into the spool, and the spool's move-and-commit
window each hold an ``flock`` on a file or folder; the clean-ups (the stale-upload sweep, the
worker's spool clean-up) take what they may delete only when they can take its lock.  A lock,
unlike a timestamp, cannot go stale while its holder is alive (a file that grows for an hour in a
folder does not touch the folder's mtime), and the kernel drops it when the holder dies however it
dies, so whatever is left unlocked belongs to nobody.  POSIX only, like the rest of the server.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _open(path: Path) -> int:
    return os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold ``path`` (a file or a folder) until the block ends; waits for another holder to let
    go."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor is what releases the lock


@contextmanager
def taken_if_free(path: Path) -> Iterator[bool]:
    """Hold ``path`` for the block if nobody else holds it; yields False (without waiting) when
    someone does, or when it is gone."""
    try:
        fd = _open(path)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)
