"""The layout tells the architecture, and these tests keep it telling the truth: imports run one way
(web → search_party → embeddings; inside search_party store ← search ← community ← ingest ←
measure, cli), light entry points load no vision stack, and docs name files that exist."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Which search_party subpackages each may import (besides itself and the top-level modules).
MAY_IMPORT = {
    "store": set(),
    "search": {"store"},
    "community": {"search", "store"},
    "ingest": {"community", "search", "store", "agent"},  # agent: the HTTP client a remote worker reuses
    "measure": {"ingest", "community", "search", "store", "cli"},
    "cli": {"ingest", "community", "search", "store", "measure", "agent"},
    "agent": set(),
}
TOP_LEVEL_MAX = 10
VISION_STACK = ("onnxruntime", "torch", "faiss", "embeddings.detector", "embeddings.embedder")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_imports_run_one_way_between_the_top_level_packages():
    wrong = [f"{_module(p)} imports {m}" for package, banned in (("embeddings", ("search_party", "web")),
                                                                 ("search_party", ("web",)))
             for p in _sources(package) for m in _imports(p) if m.split(".")[0] in banned]
    assert wrong == []


def test_each_stage_of_search_party_imports_only_the_stages_below_it():
    wrong = []
    for path in _sources("search_party"):
        parts = _module(path).split(".")
        if len(parts) < 3 or parts[1] not in MAY_IMPORT:
            continue
        stage = parts[1]
        for name in _imports(path):
            target = name.split(".")
            if target[0] == "search_party" and len(target) > 1 and target[1] in MAY_IMPORT \
                    and target[1] != stage and target[1] not in MAY_IMPORT[stage]:
                wrong.append(f"{_module(path)} imports {name}")
    assert wrong == []


def test_the_top_level_modules_import_no_stage():
    wrong = [f"{_module(p)} imports {m}" for p in (ROOT / "search_party").glob("*.py") for m in _imports(p)
             if m.split(".")[:2][-1] in MAY_IMPORT and m.startswith("search_party.")]
    assert wrong == []


def test_search_party_has_few_top_level_modules_and_each_stage_says_what_it_owns():
    top = sorted(p.name for p in (ROOT / "search_party").glob("*.py"))
    assert len(top) <= TOP_LEVEL_MAX, top
    for stage in MAY_IMPORT:
        doc = ast.get_docstring(ast.parse((ROOT / "search_party" / stage / "__init__.py").read_text()))
        assert doc and "May import" in doc and len(doc.splitlines()) == 3, stage


def test_web_reaches_the_vision_models_only_through_the_domain():
    wrong = [f"{_module(p)} imports {m}" for p in _sources("web") for m in _imports(p)
             if m.split(".")[0] == "embeddings"]
    assert wrong == []


AGENT_MAY_IMPORT = ("search_party.agent", "search_party.errors", "search_party.clip_types", "search_party.config",
                    "search_party.motion", "av", "numpy", "paho")


def test_the_agent_imports_only_what_a_neighbours_machine_needs():
    """The camera side shares the motion test and the settings, nothing of the server."""
    wrong = [f"{_module(p)} imports {m}" for p in _sources("search_party/agent") for m in _imports(p)
             if m != "__future__" and m.split(".")[0] not in sys.stdlib_module_names
             and not m.startswith(AGENT_MAY_IMPORT)]
    assert wrong == []


def _help(*command: str) -> str:
    return (f"import sys; sys.argv = ['search-party', {', '.join(map(repr, command))}, '--help']\n"
            "from search_party.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass")


@pytest.mark.parametrize("code", [
    "import search_party.config; search_party.config.load_settings()",
    _help("agent", "watch"), _help("agent", "rtsp"), _help("agent", "frigate"),
    "import search_party.agent.watch, search_party.agent.rtsp, search_party.agent.frigate",
    "import sys; sys.argv = ['search-party', 'config', '--json']\n"
    "from search_party.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass",
])
def test_light_entry_points_load_no_vision_stack(code):
    """Tried: reading the settings, each camera-side agent's help and module, and `search-party config`."""
    probe = code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert not {m for m in loaded if m.startswith(VISION_STACK)}


def test_documents_name_only_files_that_exist():
    """README, SECURITY.md, the model card and every docstring point at real files."""
    named = re.compile(r"(?<![\w/.])((?:search_party|embeddings|web|tests|scripts|docs)/[\w/.-]+\.(?:py|md|sh|html))")
    texts = [ROOT / "README.md", ROOT / "SECURITY.md", *ROOT.glob("*/*.md"), *_sources("search_party"),
             *_sources("embeddings"), *_sources("web")]
    missing = sorted({f"{t.relative_to(ROOT)}: {m}" for t in texts if t.is_file()
                      for m in named.findall(t.read_text()) if not (ROOT / m).exists()})
    assert missing == []
