"""The bounded load test (search_party.measure.load_test) for a few seconds: the real server in its own
process on 127.0.0.1, clients searching, uploading and answering at once; zero 5xx, no lost
write, and the latency table in the test output.  `search-party bench load` runs it longer."""

from __future__ import annotations

import subprocess
import sys

import pytest
from domain_world import settings_for

from search_party.errors import UserError
from search_party.measure.load_test import KINDS, run_load


def test_many_clients_get_no_5xx_and_lose_no_write(shared_data, tmp_path, capsys):
    result = run_load(shared_data, settings_for(tmp_path / "settings"), seconds=4, clients=6,
                      work_dir=tmp_path)
    with capsys.disabled():
        print("\n" + result.table())
    assert result.server_errors == 0 and result.server_tracebacks == 0
    assert result.lost_writes == []
    done = {row["kind"]: row for row in result.rows()}
    assert set(KINDS) <= set(done), "every kind of request ran at least once"
    assert done["upload"]["4xx"] == 0 and done["answer"]["4xx"] == 0 and done["report"]["4xx"] == 0
    assert result.passed


def test_bad_settings_are_refused_in_one_line(tmp_path):
    """Tried: fewer than 3 clients, and a data folder without the puppy clip."""
    too_few = subprocess.run([sys.executable, "-m", "search_party.cli", "bench", "load", "--clients", "2"],
                             capture_output=True, text=True, timeout=60)
    assert too_few.returncode == 2 and "--clients" in too_few.stderr
    with pytest.raises(UserError, match="puppy|missing"):
        run_load(tmp_path, settings_for(tmp_path / "settings"), seconds=1, clients=3)
