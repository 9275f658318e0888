"""The exported ONNX graph computes what the torch network computes, on real dog crops."""

from __future__ import annotations

import numpy as np
import pytest
import sighting_drafts
import torch

from embeddings import backbone, embedder, export, registry
from embeddings.embedder import Embedder, to_pixels
from embeddings.images import load_rgb
from embeddings.runtime import Runtime


@pytest.fixture(scope="module")
def crops(fixtures) -> list[np.ndarray]:
    """Real crops of every size: MPDD whole dogs (some tiny) and DogFaceNet faces."""
    paths = sorted((fixtures / "reid" / "mpdd").glob("*/*.jpg"))[::12]
    paths += sorted((fixtures / "reid" / "dogfacenet").glob("*/*.jpg"))[::6]
    return [load_rgb(p) for p in paths]


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return sighting_drafts.runtime()  # the session's model cache: each model is exported once


@pytest.mark.parametrize("model", ["trained", "imagenet"])
def test_onnx_matches_torch_on_real_crops(model, crops, runtime):
    emb = Embedder.load(model, runtime)
    net = (backbone.build_imagenet() if model == "imagenet"
           else backbone.load_weights(registry.locate("reid_lite0")))
    with torch.no_grad():
        reference = backbone.FlipAveraged(net)(torch.from_numpy(to_pixels(crops))).numpy()
    exported = emb.predict(crops)
    cosine = (reference * exported).sum(axis=1)
    assert cosine.min() > 0.999, cosine.min()


def test_constants_agree_between_torch_and_runtime_sides():
    # embedder.py repeats these so that inference never imports torch.
    assert embedder.INPUT_SIZE == backbone.INPUT_SIZE
    assert embedder.FEATURE_DIM == backbone.FEATURE_DIM
    assert embedder.EXPORT_REVISION == export.EXPORT_REVISION


def test_committed_weights_are_small_float16_and_pinned():
    path = registry.locate("reid_lite0")  # verifies the sha256 pinned in the registry
    assert path.parent == registry.WEIGHTS_DIR
    assert path.stat().st_size < 20_000_000
    blob = torch.load(path, map_location="cpu", weights_only=True)
    floats = [v for v in blob["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)


def test_export_refreshes_when_the_source_weights_change(runtime):
    first = Embedder.load("imagenet", runtime)
    mtime = first.onnx_path.stat().st_mtime_ns
    again = Embedder.load("imagenet", runtime)
    assert again.onnx_path == first.onnx_path
    assert again.onnx_path.stat().st_mtime_ns == mtime  # reused, not exported again
    trained = Embedder.load("trained", runtime)
    assert trained.onnx_path != first.onnx_path  # other weights, other file and version
    assert trained.version != first.version
