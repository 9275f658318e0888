"""Shared fixtures: paths to the committed real data and to ../shared/data beside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

# Web test fixtures (app, client, signed_in, neighbour): tests/web_helpers.py
pytest_plugins = ["web_helpers"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the tests need ../shared/data beside the project")
    return SHARED_DATA
