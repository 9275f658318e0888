"""The model registry finds, verifies and explains every weight file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embeddings import registry
from embeddings.errors import ModelChecksumError, ModelError, ModelNotFound
from embeddings.runtime import Runtime
from search_party.config import load_settings


def test_every_model_is_found_and_verified() -> None:
    rows = registry.status()
    assert {r.name for r in rows} >= {"picodet_s_416", "picodet_s_320", "yolox_nano", "efficientnet_lite0"}
    bad = [r for r in rows if not r.verified]
    assert not bad, bad


def test_model_dir_setting_is_searched_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(registry.locate("yolox_nano"), tmp_path / "yolox_nano.onnx")
    monkeypatch.setenv("SEARCH_PARTY_MODEL_DIR", str(tmp_path))
    runtime = load_settings().vision_runtime()
    assert registry.locate("yolox_nano", runtime) == tmp_path / "yolox_nano.onnx"


def test_altered_file_is_refused_with_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tried: the real detector with one byte flipped, placed first in the search path.
    data = bytearray(registry.locate("picodet_s_320").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "picodet_s_320_coco.onnx").write_bytes(bytes(data))
    monkeypatch.setenv("SEARCH_PARTY_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelChecksumError, match="picodet_s_320_coco.onnx"):
        registry.locate("picodet_s_320", load_settings().vision_runtime())


def test_missing_file_says_where_to_put_it(tmp_path: Path) -> None:
    # Tried: a model folder that is empty, and a shared folder that does not exist.
    runtime = Runtime(model_dirs=(tmp_path, tmp_path / "nowhere" / "shared" / "models"))
    with pytest.raises(ModelNotFound) as err:
        registry.locate("picodet_s_416", runtime)
    message = str(err.value)
    assert "picodet_s_416_coco.onnx" in message and str(tmp_path) in message


def test_unknown_model_name() -> None:
    with pytest.raises(ModelError, match="unknown model"):
        registry.locate("resnet_for_faces")


def test_models_command_lists_each_model_as_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "search_party.cli", "models", "--json"],
        capture_output=True, text=True, check=True,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert all(r["verified"] and Path(r["path"]).is_file() for r in rows)


def test_models_command_fails_cleanly_when_a_file_is_missing(tmp_path: Path) -> None:
    # Tried: the CLI with a model folder holding a corrupt copy of one detector.
    (tmp_path / "yolox_nano.onnx").write_bytes(b"not a model")
    out = subprocess.run(
        [sys.executable, "-m", "search_party.cli", "models"],
        capture_output=True, text=True, env={**os.environ, "SEARCH_PARTY_MODEL_DIR": str(tmp_path)},
    )
    assert out.returncode == 1
    assert "BAD SHA256" in out.stdout and "Traceback" not in out.stderr


