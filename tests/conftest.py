"""Shared fixtures (Flask tutorial style): a fresh data folder's ``settings`` and ``db``, the real
``app`` with a ``client`` and a CLI ``runner``, signed-in users, and the committed real data.

Helpers that are not fixtures live in plain modules the tests import: ``sighting_drafts`` (real
fixture dogs as sighting drafts), ``domain_world`` (a small neighbourhood), ``owner_world``,
``web_helpers`` (CSRF-aware requests, a live server), ``clipmaker`` and ``short_clips`` (real
clips composed from real crops).

Nothing here writes into the repository: every data folder is under pytest's tmp_path, the
exported ONNX graphs (and hypothesis's examples) go to one folder per test session
(SEARCH_PARTY_MODEL_CACHE, inherited by the subprocesses tests start), and the session fails if
a file appeared in the working tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from hypothesis.configuration import set_hypothesis_home_dir
from sqlite_utils import Database
from web_helpers import PASSWORD, Neighbour, add_opted_in_camera, app_config, sign_in

from search_party.community import accounts
from search_party.config import Settings
from search_party.store.db import open_db

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"
MODEL_CACHE = "SEARCH_PARTY_MODEL_CACHE"
_cache_key = pytest.StashKey[Path]()
_tree_key = pytest.StashKey[frozenset[str]]()


def _working_tree() -> frozenset[str]:
    """Every file in the repository's folder, tracked, untracked or ignored (but the virtual
    environment and caches that Python and pytest keep by design)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "-z", "--exclude=/.venv/",
                             "--exclude=/.pytest_cache/", "--exclude=__pycache__/"], cwd=ROOT,
                            capture_output=True, check=True).stdout
    return frozenset(p for p in listed.decode().split("\0") if p)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_cache_key] = Path(tempfile.mkdtemp(prefix="search-party-tests-"))
    # Property tests keep their examples and caches beside the models, not in the repository.
    set_hypothesis_home_dir(str(config.stash[_cache_key] / "hypothesis"))
    os.environ[MODEL_CACHE] = str(config.stash[_cache_key] / "models")
    config.stash[_tree_key] = _working_tree()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before: frozenset[str] = session.config.stash[_tree_key]
    new = sorted(_working_tree() - before)
    if new:
        print(f"\nthe tests wrote into the repository: {', '.join(new[:10])}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(config.stash[_cache_key], ignore_errors=True)


# ---------------------------------------------------------------- data


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the tests need ../shared/data beside the project")
    return SHARED_DATA


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh data folder (SQLite, spool, queue), PicoDet-S-416 and the embedder that ships."""
    from domain_world import settings_for

    return settings_for(tmp_path / "data")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    """A fresh, migrated SQLite database."""
    return open_db(tmp_path / "sp.db")


# ---------------------------------------------------------------- the app and the shell


@pytest.fixture
def app(settings: Settings) -> Flask:
    """The real app on ``settings``: TESTING on, rate limits off, clips NOT queued (tests that
    need processing run the worker's task body, ``clip_task.run_clip``, or a real worker)."""
    from web import create_app

    return create_app(app_config(settings))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An anonymous test client."""
    return app.test_client()


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``runner(*args, ok=True, input=None)``: `search-party ARGS` run in this process on
    ``settings``'s data folder, ``input`` on its standard input (with ``ok``, a non-zero exit
    fails the test and exceptions are not swallowed)."""
    from search_party.cli import cli

    for name in [n for n in os.environ if n.startswith("SEARCH_PARTY_") and n != MODEL_CACHE]:
        monkeypatch.delenv(name)
    for name, value in settings.as_environment().items():
        monkeypatch.setenv(name, value)
    invoker = CliRunner()

    def run(*args: str, ok: bool = True, input: str | None = None) -> Result:
        result = invoker.invoke(cli, list(args), catch_exceptions=not ok, input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


@pytest.fixture
def signed_in(app: Flask) -> Callable[[str], FlaskClient]:
    """``signed_in(email)``: a new account with PASSWORD, and a client signed in as it."""
    def make(email: str) -> FlaskClient:
        with open_db(app.config["SETTINGS"].db_path) as db:
            accounts.create_user(db, email, PASSWORD)
        client = app.test_client()
        response = sign_in(client, email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client
    return make


@pytest.fixture
def neighbour(app: Flask, signed_in: Callable[[str], FlaskClient]) -> Neighbour:
    """A signed-in camera owner with one opted-in camera."""
    client = signed_in("neighbour@example.org")
    user_id, camera_id = add_opted_in_camera(app, "neighbour@example.org")
    return Neighbour(client, user_id, camera_id)
