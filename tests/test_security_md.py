"""SECURITY.md ties each guarantee to a test: every test it names must exist, so the file cannot
point at a test that was renamed or removed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+\*?)?)`|`::(\w+\*?)`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}


def test_every_test_named_in_security_md_exists():
    text = (ROOT / "SECURITY.md").read_text()
    checked, current = 0, None
    for match in REFERENCE.finditer(text):
        file, in_file, bare = match.groups()
        if file:
            current = ROOT / file
            assert current.is_file(), f"SECURITY.md names {file}, which does not exist"
            name = in_file[2:] if in_file else None
        else:
            name = bare  # `::test` continues the file named last in the same cell
        if name is None:
            continue
        names = _tests_in(current)
        found = ([n for n in names if n.startswith(name[:-1])] if name.endswith("*") else
                 [name] if name in names else [])
        assert found, f"SECURITY.md names {current.relative_to(ROOT)}::{name}, which does not exist"
        checked += 1
    assert checked >= 40
