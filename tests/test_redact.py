"""Person regions are blurred beyond recognition, and nothing else in the picture changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings import boxes as bx
from embeddings.detector import PetDetector
from embeddings.images import load_rgb
from embeddings.redact import blur_beside, blur_regions


def _detail(rgb: np.ndarray) -> float:
    """High-frequency energy: mean absolute difference between neighbouring pixels."""
    grey = rgb.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


@pytest.fixture(scope="module")
def detector() -> PetDetector:
    return PetDetector.load("picodet_s_416")


@pytest.mark.parametrize(
    "relpath",
    ["persons/skimage/astronaut.png", "persons/unsplash_via_opencv_course/group_1.jpg",
     "persons/matplotlib/grace_hopper.jpg"],
)
def test_detected_people_are_blurred_and_the_rest_is_untouched(detector, shared_data: Path, relpath):
    rgb = load_rgb(shared_data / relpath)
    before = rgb.copy()
    persons = detector.person_boxes(rgb)
    assert persons
    out = blur_regions(rgb, persons)
    assert np.array_equal(rgb, before), "blur_regions must not modify its input"
    h, w = rgb.shape[:2]
    covered = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in bx.pad(np.asarray(persons, np.float64), 0.1, w, h):
        covered[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
    for x1, y1, x2, y2 in (tuple(int(round(v)) for v in b) for b in persons):
        if (x2 - x1) * (y2 - y1) < 32 * 32:
            continue  # a handful of pixels has little detail to lose; the big regions prove it
        orig, blurred = rgb[y1:y2, x1:x2], out[y1:y2, x1:x2]
        assert _detail(blurred) < 0.25 * _detail(orig), (relpath, (x1, y1, x2, y2))
        assert np.abs(blurred.astype(int) - orig.astype(int)).mean() > 8, (relpath, (x1, y1, x2, y2))
    assert np.array_equal(out[~covered], rgb[~covered])


def test_a_face_is_reduced_to_a_few_colours(fixtures: Path):
    # The astronaut's face, drawn by hand; after blurring the whole person it must be featureless.
    rgb = load_rgb(fixtures / "images" / "astronaut.png")
    out = blur_regions(rgb, [(15.0, 10.0, 365.0, 512.0)])
    face = (slice(40, 200), slice(140, 260))
    assert _detail(out[face]) < 0.1 * _detail(rgb[face])


def test_no_boxes_gives_an_unchanged_copy(fixtures: Path):
    rgb = load_rgb(fixtures / "images" / "skimage_chelsea.png")
    out = blur_regions(rgb, [])
    assert out is not rgb and np.array_equal(out, rgb)


def test_boxes_reaching_past_the_edges_are_clipped(fixtures: Path):
    rgb = load_rgb(fixtures / "images" / "astronaut.png")
    # Tried: a box hanging off the top-left corner, and one wholly outside the image.
    out = blur_regions(rgb, [(-50.0, -50.0, 250.0, 250.0), (600.0, 600.0, 700.0, 700.0)])
    assert out.shape == rgb.shape
    assert _detail(out[:250, :250]) < 0.25 * _detail(rgb[:250, :250])
    assert np.array_equal(out[300:, 300:], rgb[300:, 300:])


def test_non_rgb_arrays_are_refused(fixtures: Path):
    grey = load_rgb(fixtures / "images" / "astronaut.png")[..., 0]
    # Tried: a 2-D greyscale array.
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        blur_regions(grey, [(0.0, 0.0, 10.0, 10.0)])


def test_blur_beside_keeps_the_pet_box_sharp_and_blurs_the_person_around_it(fixtures: Path):
    # A real person (the astronaut) and a pet box drawn over part of her: outside the pet box her
    # pixels lose their detail, inside it every pixel is the original.
    rgb = load_rgb(fixtures / "images" / "astronaut.png")
    person, pet = (40, 20, 440, 500), (250, 300, 400, 480)
    out = blur_beside(rgb, [person], keep=pet)
    assert np.array_equal(out[300:480, 250:400], rgb[300:480, 250:400])
    assert _detail(out[40:280, 60:240]) < 0.2 * _detail(rgb[40:280, 60:240])
