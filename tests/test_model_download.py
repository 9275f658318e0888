"""A missing model file is fetched and verified (what `make run` does on a machine without
../shared), against a real HTTP server started here that serves real model files: the right
file is kept under its name, a wrong or oversized one is refused and leaves nothing behind, and
the offline switch forbids any fetch."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from embeddings import registry
from embeddings.errors import ModelChecksumError, ModelNotFound
from embeddings.runtime import Runtime
from search_party.config import load_settings

MODEL = "yolox_nano"  # the smallest detector (3.7 MB)


class _Counted(SimpleHTTPRequestHandler):
    served: list[str]

    def do_GET(self) -> None:
        self.served.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """(base URL, the folder it serves, the paths asked for) of a real HTTP server on 127.0.0.1."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    served: list[str] = []
    handler = type("Handler", (_Counted,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/models", folder, served
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _runtime(empty: Path, url: str, *, allow: bool = True) -> Runtime:
    """No ../shared here: only an empty model folder, which also takes what is fetched."""
    return Runtime(model_dirs=(empty,), cache_dir=empty / "graphs", allow_download=allow, mirror=url)


def test_a_missing_model_is_fetched_verified_and_kept(tmp_path, mirror):
    url, folder, served = mirror
    spec = registry.get(MODEL)
    (folder / "models").mkdir()
    shutil.copy(registry.locate(MODEL), folder / "models" / spec.filename)
    empty = tmp_path / "models"
    path = registry.locate(MODEL, _runtime(empty, url))
    assert path == empty / spec.filename and registry.sha256_of(path) == spec.sha256
    assert served == [f"/models/{spec.filename}"]
    assert registry.locate(MODEL, _runtime(empty, url)) == path and len(served) == 1  # kept: not fetched again
    assert sorted(p.name for p in empty.iterdir()) == [spec.filename]


@pytest.mark.parametrize("what", ["another detector under its name", "one byte changed", "a longer file"])
def test_a_fetched_file_that_is_not_the_pinned_one_is_refused_and_nothing_is_kept(tmp_path, mirror, what):
    """Tried: the mirror serving picodet_s_320 under yolox_nano's name, the right file with one
    byte flipped, and the right file with more bytes after it."""
    url, folder, _ = mirror
    spec = registry.get(MODEL)
    right = registry.locate(MODEL).read_bytes()
    served = {"another detector under its name": registry.locate("picodet_s_320").read_bytes(),
              "one byte changed": right[:100] + bytes([right[100] ^ 1]) + right[101:],
              "a longer file": right + b"\0" * 1024}[what]
    (folder / "models").mkdir()
    (folder / "models" / spec.filename).write_bytes(served)
    empty = tmp_path / "models"
    with pytest.raises(ModelChecksumError, match="refused"):
        registry.locate(MODEL, _runtime(empty, url))
    assert list(empty.iterdir()) == []  # no half-fetched or wrong file left to be found later


def test_the_offline_switch_forbids_any_fetch(tmp_path, mirror, monkeypatch):
    """Tried: SEARCH_PARTY_OFFLINE=1 with a missing file and a mirror that has it."""
    url, folder, served = mirror
    spec = registry.get(MODEL)
    (folder / "models").mkdir()
    shutil.copy(registry.locate(MODEL), folder / "models" / spec.filename)
    assert load_settings().vision_runtime().allow_download  # fetching is the default
    monkeypatch.setenv("SEARCH_PARTY_OFFLINE", "1")
    offline = load_settings(model_mirror=url).vision_runtime()
    assert not offline.allow_download
    runtime = Runtime(model_dirs=(tmp_path / "models",), allow_download=offline.allow_download, mirror=url)
    with pytest.raises(ModelNotFound, match="SEARCH_PARTY_OFFLINE"):
        registry.locate(MODEL, runtime)
    assert served == []


def test_an_unreachable_source_says_what_to_do(tmp_path, mirror):
    """Tried: a mirror that does not have the file (404)."""
    url, _, _ = mirror
    with pytest.raises(ModelNotFound, match="could not be fetched"):
        registry.locate(MODEL, _runtime(tmp_path / "models", url))


def test_the_server_fetches_into_its_data_folder(tmp_path):
    """Without SEARCH_PARTY_MODEL_DIR a fetched file goes beside the exported graphs (by default
    DATA_DIR/models, a folder the server may write), and is looked for there next time."""
    settings = load_settings(data_dir=tmp_path / "data", model_cache=None)
    runtime = settings.vision_runtime()
    assert runtime.download_dir == settings.cache_dir == tmp_path / "data" / "models"
    assert runtime.download_dir / "yolox_nano.onnx" in registry.candidates(registry.get(MODEL), runtime)
