"""The Embedder as the rest of the project uses it: real crops in, unit vectors out."""

from __future__ import annotations

import numpy as np
import pytest
import sighting_drafts

from embeddings import reid_data
from embeddings.embedder import Embedder, crop_box
from embeddings.errors import ModelError
from embeddings.evaluate import score
from embeddings.images import load_rgb
from embeddings.runtime import Runtime


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return sighting_drafts.runtime()  # the session's model cache: each model is exported once


@pytest.fixture(scope="module")
def trained(runtime) -> Embedder:
    return Embedder.load("trained", runtime)


@pytest.fixture(scope="module")
def mpdd(fixtures) -> list[reid_data.LabelledImage]:
    return reid_data.read_folder(fixtures / "reid" / "mpdd")


def test_embed_gives_unit_float32_vectors_of_fixed_size(trained, fixtures):
    crops = [load_rgb(p) for p in sorted((fixtures / "reid" / "dogfacenet").glob("*/*.jpg"))[:5]]
    crops.append(load_rgb(fixtures / "images" / "zamba_dog_porch.jpg"))  # a whole frame, any size
    vectors = trained.predict(crops)
    assert vectors.shape == (6, trained.dim) and trained.dim == 1280
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The same crop gives the same vector, alone or in a batch.
    np.testing.assert_allclose(trained.predict(crops[:1])[0], vectors[0], atol=1e-5)
    assert trained.predict([]).shape == (0, trained.dim)


def test_version_is_stable_and_names_the_model(trained, runtime):
    again = Embedder.load("trained", runtime)
    assert again.version == trained.version
    assert trained.version.startswith("lite0-trained-")
    assert Embedder.load("imagenet", runtime).version.startswith("lite0-imagenet-")


def test_bad_crops_and_models_are_refused(trained, runtime):
    # A float image instead of uint8 RGB.
    with pytest.raises(ValueError, match="uint8"):
        trained.predict([np.zeros((50, 50, 3), dtype=np.float32)])
    # A greyscale (2-D) array.
    with pytest.raises(ValueError, match="H×W×3"):
        trained.predict([np.zeros((50, 50), dtype=np.uint8)])
    # A model name that does not exist.
    with pytest.raises(ModelError, match="unknown embedder"):
        Embedder.load("resnet", runtime)


def test_crop_box_adds_a_margin_and_clips_to_the_image(fixtures):
    rgb = load_rgb(fixtures / "images" / "zamba_dog_porch.jpg")
    h, w = rgb.shape[:2]
    inner = crop_box(rgb, (100, 50, 200, 150), margin=0.1)
    assert inner.shape[:2] == (120, 120)
    np.testing.assert_array_equal(inner, rgb[40:160, 90:210])
    edge = crop_box(rgb, (w - 50, h - 50, w + 10, h + 10))  # a box running off the corner
    assert edge.shape[:2] == (56, 56)
    # A box wholly outside the picture.
    with pytest.raises(ValueError, match="outside"):
        crop_box(rgb, (w + 10, 0, w + 50, 40))


def test_same_dog_from_another_sequence_ranks_first_far_above_chance(trained, mpdd):
    """End to end on validation dogs the model never saw: the nearest crop from another sequence
    is the same dog far more often than a random pick would be."""
    vectors = trained.predict([load_rgb(it.path) for it in mpdd])
    ids = [it.identity for it in mpdd]
    seqs = [it.sequence for it in mpdd]
    result = score(vectors, ids, seqs)
    # Chance: the share of a query's allowed gallery that is the same dog, averaged.
    ids_a, seqs_a = np.array(ids), np.array(seqs)
    chance = np.mean([((ids_a == ids_a[i]) & (seqs_a != seqs_a[i])).sum()
                      / (seqs_a != seqs_a[i]).sum() for i in range(len(mpdd))])
    assert result.queries == len(mpdd)
    assert result.rank1 > 0.9 > 3 * chance
