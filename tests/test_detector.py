"""The pet-only detector on real images, for every detector graph the project ships.

Reference boxes were drawn by hand on the images (and checked against each detector's output):
they prove the pre-processing (resize, channel order, normalisation) and the box decoding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings import boxes as bx
from embeddings.detector import DETECTORS, Detection, PetDetector, Shrunk
from embeddings.errors import ModelError
from embeddings.images import load_rgb

DOG_ON_PORCH = (133.0, 222.0, 310.0, 540.0)  # zamba_dog_porch.jpg, 768×576
ASTRONAUT = (15.0, 10.0, 365.0, 512.0)  # astronaut.png, 512×512


@pytest.fixture(scope="module")
def detectors() -> dict[str, PetDetector]:
    return {name: PetDetector.load(name) for name in DETECTORS}


@pytest.fixture(scope="module")
def images(fixtures: Path) -> dict[str, np.ndarray]:
    folder = fixtures / "images"
    return {p.name: load_rgb(p) for p in sorted(folder.iterdir()) if p.suffix in (".jpg", ".png")}


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(bx.iou(np.asarray(a), np.asarray([b]))[0])


@pytest.mark.parametrize("name", DETECTORS)
def test_finds_the_dog_on_the_porch(detectors, images, name):
    pets = detectors[name].predict(images["zamba_dog_porch.jpg"])
    assert [p.label for p in pets] == ["dog"], pets
    assert pets[0].score >= detectors[name].conf
    assert _iou(pets[0].box, DOG_ON_PORCH) >= 0.75, pets[0].box


@pytest.mark.parametrize("name", DETECTORS)
def test_finds_the_cat_chelsea(detectors, images, name):
    rgb = images["skimage_chelsea.png"]
    pets = detectors[name].predict(rgb)
    assert [p.label for p in pets] == ["cat"], pets
    x1, y1, x2, y2 = pets[0].box
    # Chelsea fills most of the picture.
    assert (x2 - x1) * (y2 - y1) >= 0.7 * rgb.shape[0] * rgb.shape[1]


@pytest.mark.parametrize("name", DETECTORS)
def test_no_pets_in_any_person_image(detectors, shared_data, name):
    paths = sorted((shared_data / "persons").rglob("*.*"))
    assert len(paths) == 7
    found = {p.name: detectors[name].predict(load_rgb(p)) for p in paths}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("name", DETECTORS)
def test_astronaut_is_a_person_region_and_not_a_pet(detectors, images, name):
    rgb = images["astronaut.png"]
    persons = detectors[name].person_boxes(rgb)
    assert persons, "no person found in astronaut.png"
    biggest = max(persons, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    assert _iou(biggest, ASTRONAUT) >= 0.8, biggest
    assert detectors[name].predict(rgb) == []


@pytest.mark.parametrize("name", DETECTORS)
def test_the_fixture_grey_fox_is_not_a_dog(detectors, images, name):
    assert detectors[name].predict(images["grey_fox__4330.jpg"]) == []


# Measured, not hidden: PicoDet-S-416 calls one camera-trap grey fox a dog (score 0.48, above
# its 0.4 threshold). The other two graphs and the other two foxes are clean.
_FOX_CASES = [
    pytest.param(
        name,
        fox,
        marks=pytest.mark.xfail(strict=True, reason="PicoDet-S-416 sees a dog (0.48) in this grey fox"),
    )
    if (name, fox) == ("picodet_s_416", "grey_fox__4383.jpg")
    else (name, fox)
    for name in DETECTORS
    for fox in ("grey_fox__4330.jpg", "grey_fox__4383.jpg", "grey_fox__4451.jpg")
]


@pytest.mark.parametrize(("name", "fox"), _FOX_CASES)
def test_camera_trap_grey_foxes_are_not_dogs(detectors, shared_data, name, fox):
    rgb = load_rgb(shared_data / "negatives" / "camera_trap_ena24" / fox)
    assert [p for p in detectors[name].predict(rgb) if p.label == "dog"] == []


def test_pet_boxes_are_clipped_labelled_and_merged_across_classes(detectors, shared_data):
    # Several cats, a wild dog and camera-trap animals: plenty of overlapping candidates.
    paths = sorted((shared_data / "negatives").rglob("*.jpg")) + [shared_data / "misc_dogs" / "zamba_dog_porch.jpg"]
    for path in paths:
        rgb = load_rgb(path)
        h, w = rgb.shape[:2]
        for det in detectors.values():
            pets = det.predict(rgb)
            where = (path.name, det.name)
            for p in pets:
                assert isinstance(p, Detection) and p.label in ("dog", "cat")
                x1, y1, x2, y2 = p.box
                assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (where, p)
                assert det.conf <= p.score <= 1
            assert [p.score for p in pets] == sorted((p.score for p in pets), reverse=True)
            # One class-agnostic NMS: no dog box and cat box (or two of either) overlap heavily.
            for i, a in enumerate(pets):
                for b in pets[i + 1 :]:
                    assert _iou(a.box, b.box) <= det.iou_threshold, (where, a, b)


def test_detect_and_person_boxes_share_one_forward_pass(images, monkeypatch):
    det = PetDetector.load("yolox_nano")
    runs = []
    real_run = det._graph.model.run
    monkeypatch.setattr(det._graph.model, "run", lambda feeds: runs.append(1) or real_run(feeds))
    frame = images["zamba_dog_porch.jpg"].copy()
    pets, persons = det.predict(frame), det.person_boxes(frame)
    assert len(runs) == 1 and [p.label for p in pets] == ["dog"] and persons == []
    # Another array object holding the same frame is the same frame.
    assert det.person_boxes(frame.copy()) == persons and len(runs) == 1
    # A video decoder may reuse the same buffer for the next frame: new pixels, new pass.
    frame[:] = frame[:, ::-1].copy()
    mirrored = det.predict(frame)
    assert len(runs) == 2 and [p.label for p in mirrored] == ["dog"]
    mirrored_dog = (768 - DOG_ON_PORCH[2], DOG_ON_PORCH[1], 768 - DOG_ON_PORCH[0], DOG_ON_PORCH[3])
    assert _iou(mirrored[0].box, mirrored_dog) >= 0.6, mirrored[0].box


@pytest.mark.parametrize("name", DETECTORS)
def test_a_frame_shrunk_beforehand_gives_the_same_boxes(detectors, images, name):
    # Video ingest shrinks frames itself (FFmpeg's scaler, in its decoding thread): boxes still
    # come back in pixels of the full frame.
    det = detectors[name]
    rgb = images["zamba_dog_porch.jpg"]
    shrunk = det.shrink(rgb)
    assert shrunk.rgb.shape[1::-1] == det.input_size(768, 576)
    assert det.predict(shrunk) == det.predict(rgb)
    (dog,) = det.predict(shrunk)
    assert _iou(dog.box, DOG_ON_PORCH) >= 0.75


def test_a_frame_shrunk_to_the_wrong_size_is_refused(detectors, images):
    # Tried: a 416×416 picture said to come from a 768×576 frame, for YOLOX (which letterboxes
    # to 416×312), and a PicoDet input that is not square.
    yolox, picodet = detectors["yolox_nano"], detectors["picodet_s_416"]
    square = picodet.shrink(images["zamba_dog_porch.jpg"])
    with pytest.raises(ValueError, match="must be shrunk to"):
        yolox.predict(Shrunk(square.rgb, 768, 576))
    with pytest.raises(ValueError, match="must be shrunk to"):
        picodet.predict(Shrunk(square.rgb[:300], 768, 576))


def test_person_boxes_never_come_out_of_detect(detectors, images):
    for det in detectors.values():
        for name, rgb in images.items():
            persons = set(det.person_boxes(rgb))
            assert not persons & {p.box for p in det.predict(rgb)}, name


def test_thresholds_default_per_model_and_are_configurable(images):
    assert PetDetector.load("picodet_s_416").conf == 0.4
    assert PetDetector.load("yolox_nano").conf == 0.25
    strict = PetDetector.load("picodet_s_320", conf=0.99)
    assert strict.predict(images["zamba_dog_porch.jpg"]) == []


def test_unknown_detector_name_is_a_model_error():
    # Tried: a detector name that is not in the registry.
    with pytest.raises(ModelError, match="unknown detector 'yolov9'"):
        PetDetector.load("yolov9")


def test_non_rgb_arrays_are_refused(detectors, images):
    det = detectors["picodet_s_416"]
    grey = images["skimage_chelsea.png"][..., 0]
    # Tried: a 2-D greyscale array and a float image; both must be converted by the caller.
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        det.predict(grey)
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        det.predict(images["skimage_chelsea.png"].astype(np.float32))


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.5, 0.9, 0.7], np.float32)
    assert bx.nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert bx.nms(boxes[:0], scores[:0], 0.5).tolist() == []


def test_picodet_weights_are_constants_and_outputs_unchanged(images):
    # The published PicoDet graphs list every weight as an input too, which keeps onnxruntime
    # from folding or fusing anything; the project's session drops them from the inputs.  The
    # answer must be the same as the file's own, as published.
    import onnxruntime as ort

    from embeddings.registry import locate

    det = PetDetector.load("picodet_s_416", threads=1)
    model = det._graph.model
    as_published = ort.InferenceSession(str(locate("picodet_s_416")),
                                        providers=["CPUExecutionProvider"])
    assert len(as_published.get_overridable_initializers()) > 100
    assert model.session.get_overridable_initializers() == []
    small = det.shrink(images["zamba_dog_porch.jpg"]).rgb
    x = ((small.transpose(2, 0, 1) - det._graph._mean[:, None, None])
         / det._graph._std[:, None, None])[None].astype(np.float32)
    for ours, theirs in zip(model.run({"image": x}), as_published.run(None, {"image": x})):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
