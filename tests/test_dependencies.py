"""What an install is made of: setup.cfg's requirements, the lock file CI and `make setup` install
from (scripts/lock.sh writes it), and a production install that needs neither torch, torchvision
nor Playwright."""

from __future__ import annotations

import re
from importlib.metadata import distribution, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
NOT_IN_PRODUCTION = {"torch", "torchvision", "playwright"}


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = version
    return pins


def _requirements(extra: str | None) -> list[Requirement]:
    """The project's requirements for ``extra`` (None: the base install)."""
    out = []
    for text in requires("search-party") or []:
        req = Requirement(text)
        wanted = req.marker is None if extra is None else (req.marker is not None
                                                           and req.marker.evaluate({"extra": extra}))
        if wanted:
            out.append(req)
    return out


def test_sqlite_utils_is_pinned_to_4x():
    """The migrations rely on sqlite-utils 4 running a script inside the open transaction
    (tests/test_db.py::test_a_migration_that_fails_half_way_changes_nothing)."""
    (req,) = [r for r in _requirements(None) if r.name == "sqlite-utils"]
    assert req.specifier.contains("4.2.1") and not req.specifier.contains("3.38")
    assert not req.specifier.contains("5.0")
    assert distribution("sqlite-utils").version.startswith("4.")


def test_the_lock_pins_every_requirement_within_setup_cfg_and_is_what_is_installed():
    locked = _locked()
    for extra in (None, "train", "test"):
        for req in _requirements(extra):
            assert _name(req.name) in locked, f"{req.name} is missing from requirements.lock: run scripts/lock.sh"
            assert req.specifier.contains(locked[_name(req.name)], prereleases=True), (
                f"requirements.lock pins {req.name}=={locked[_name(req.name)]}, outside setup.cfg's {req}")
    for name, version in locked.items():
        assert distribution(name).version == version, f"{name} installed is not the locked {version}"
    assert "-c requirements.lock" in (ROOT / "scripts" / "bootstrap.sh").read_text()


def test_a_production_install_needs_no_torch_torchvision_or_playwright():
    """Everything the base install pulls in, followed through each package's own requirements:
    none of them is torch, torchvision or Playwright (those are the train and test extras)."""
    seen: set[str] = set()
    todo = [r for r in _requirements(None)]
    while todo:
        req = todo.pop()
        name = _name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo.extend(Requirement(t) for t in distribution(name).requires or [])
    assert seen and not seen & NOT_IN_PRODUCTION, seen & NOT_IN_PRODUCTION
    assert {"onnxruntime", "flask", "waitress", "faiss-cpu"} <= seen
