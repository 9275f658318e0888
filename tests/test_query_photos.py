"""A report's photos become query vectors of the animal only (invariant 1): real photos, the real
pet-only detector and the real embedder."""

from __future__ import annotations

import dataclasses
from typing import cast

import numpy as np
import pytest
from PIL import Image
from sighting_drafts import embedder, runtime, species

from embeddings.detector import PetDetector
from embeddings.embedder import CROP_MARGIN, Embedder, crop_box
from embeddings.errors import ImageError
from embeddings.images import load_rgb
from search_party.errors import UserError
from search_party.search.query_photos import MAX_PHOTOS, QueryPhotos, query_from_photos
from search_party.vision import Models


def detector() -> PetDetector:
    return PetDetector.cached("picodet_s_416", runtime())


class RecordingEmbedder:
    """A real embedder, keeping every crop it was handed (to prove what was embedded)."""

    def __init__(self, real: Embedder | None = None) -> None:
        self.real = real or embedder()
        self.version, self.dim = self.real.version, self.real.dim
        self.crops: list[np.ndarray] = []

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        self.crops.extend(crops)
        return self.real.predict(crops)


def models(spy: RecordingEmbedder | None = None,
           species_spy: RecordingEmbedder | None = None) -> Models:
    """The real models; the re-ID embedder and the species head's features optionally spied."""
    head = species()
    # A spy stands in for the embedder it wraps (it has the same version, dim and predict).
    if species_spy is not None:
        head = dataclasses.replace(head, features=cast(Embedder, species_spy))
    return Models(detector(), cast(Embedder, spy) if spy else embedder(), head)


def person_beside_dog(fixtures) -> tuple[np.ndarray, int]:
    """A real person photo (astronaut) and a real dog photo (the porch dog) side by side, the
    dog scaled to the same height; returns the picture and where the dog's half starts."""
    person = load_rgb(fixtures / "images" / "astronaut.png")
    dog = load_rgb(fixtures / "images" / "zamba_dog_porch.jpg")
    h = person.shape[0]
    w = round(dog.shape[1] * h / dog.shape[0])
    dog = np.asarray(Image.fromarray(dog).resize((w, h), Image.Resampling.BILINEAR))
    return np.concatenate([person, dog], axis=1), person.shape[1]


def test_photos_become_unit_vectors_of_the_dog(fixtures):
    spy = RecordingEmbedder()
    photos = [fixtures / "images" / "zamba_dog_porch.jpg",
              (fixtures / "images" / "zamba_dog_porch.jpg").read_bytes()]
    query = query_from_photos(photos, models(spy))
    assert query.vectors.shape == (2, spy.dim) and query.model_version == spy.version
    np.testing.assert_allclose(np.linalg.norm(query.vectors, axis=1), 1.0, atol=1e-5)
    assert query.species == "dog" and len(query.boxes) == 2
    np.testing.assert_allclose(query.vectors[0], query.vectors[1], atol=1e-5)  # path or bytes alike
    assert np.linalg.norm(query.vector) == pytest.approx(1.0, abs=1e-5)


def test_a_photo_with_a_person_and_a_dog_embeds_only_the_dog(fixtures):
    picture, dog_starts = person_beside_dog(fixtures)
    persons = detector().person_boxes(picture)
    assert any(box[2] <= dog_starts for box in persons)  # the detector does see the person
    spy, species_spy = RecordingEmbedder(), RecordingEmbedder(species().features)
    query = query_from_photos([picture], models(spy, species_spy))
    (box,) = query.boxes
    assert box[0] >= dog_starts - 1  # the dog's box, wholly in the dog's half
    (crop,) = spy.crops
    np.testing.assert_array_equal(crop, crop_box(picture, box, CROP_MARGIN))
    # The species head judged the dog's box and nothing else.
    assert len(species_spy.crops) == 1
    np.testing.assert_array_equal(species_spy.crops[0], crop)
    # The crop holds none of the person's pixels: it starts right of every person box.
    left = max(0, int(np.floor(box[0] - (box[2] - box[0]) * CROP_MARGIN)))
    assert all(p[2] <= left + 1 for p in persons if p[2] <= dog_starts)
    alone = query_from_photos([fixtures / "images" / "zamba_dog_porch.jpg"], models())
    assert float(query.vectors[0] @ alone.vectors[0]) > 0.9  # the same dog as in its own photo


def test_a_photo_without_the_species_is_refused_with_its_number_and_nothing_is_embedded(fixtures):
    """Tried: a person only (astronaut), a grey fox (a dog look-alike), a cat reported as a dog."""
    dog = fixtures / "images" / "zamba_dog_porch.jpg"
    spy = RecordingEmbedder()
    with pytest.raises(UserError, match=r"^no dog found in photo 2 — try one where the dog is clearly visible"):
        query_from_photos([dog, fixtures / "images" / "astronaut.png"], models(spy))
    with pytest.raises(UserError, match="no dog found in photo 3"):
        query_from_photos([dog, dog, fixtures / "images" / "grey_fox__4330.jpg"], models(spy))
    with pytest.raises(UserError, match=r"no dog found in photo 1 \(it seems to show a cat\)"):
        query_from_photos([fixtures / "images" / "skimage_chelsea.png"], models(spy))
    assert spy.crops == []  # refused before anything was embedded for the search


def test_a_cat_report_takes_a_cat_photo(fixtures):
    query = query_from_photos([fixtures / "images" / "skimage_chelsea.png"], models(), species="cat")
    assert query.species == "cat" and query.vectors.shape == (1, embedder().dim)


def test_the_number_of_photos_and_the_species_are_checked(fixtures):
    """Tried: no photo, six photos, an unknown species, and a file that is not an image."""
    dog = fixtures / "images" / "zamba_dog_porch.jpg"
    with pytest.raises(UserError, match="1 to 5 photos"):
        query_from_photos([], models())
    with pytest.raises(UserError, match=f"at most {MAX_PHOTOS}"):
        query_from_photos([dog] * (MAX_PHOTOS + 1), models())
    with pytest.raises(UserError, match="species 'horse'"):
        query_from_photos([dog], models(), species="horse")
    with pytest.raises(ImageError, match="^photo 2: "):
        query_from_photos([dog, b"this is not a picture"], models())
    with pytest.raises(ValueError, match="1 to 5 photo vectors"):
        QueryPhotos("dog", np.zeros((0, 4), np.float32), "lite0-imagenet-x")
