"""`search-party bench scale` with real parts: a real redis-server, the real server in its own
process, remote workers as processes, copies of the real puppy clip.  Only the shape and the
bookkeeping are checked (never a time): every clip stored, the server's CPU measured."""

from __future__ import annotations

import json
import os

import pytest
from web_helpers import DOG_CLIP

from search_party.errors import UserError


def test_bench_scale_measures_one_and_two_workers_and_the_servers_cpu_per_clip(runner):
    rows = json.loads(runner("bench", "scale", str(DOG_CLIP), "--clips", "2", "--workers", "1,2", "--json").output)
    assert rows["cores"] == os.cpu_count() and rows["clip"] == DOG_CLIP.name
    assert [(r["workers"], r["clips"], r["failed"]) for r in rows["rows"]] == [(1, 2, 0), (2, 2, 0)]
    assert all(r["clips_per_minute"] > 0 and r["server_cpu_ms_per_clip"] > 0 for r in rows["rows"])


def test_bench_scale_refuses_worker_counts_it_cannot_run(runner):
    """Tried: 0 workers, a word, 17 workers."""
    for counts in ("0", "two", "1,17"):
        with pytest.raises(UserError, match="--workers"):
            runner("bench", "scale", str(DOG_CLIP), "--workers", counts)
