"""Dog or cat is the species head's call, not COCO's label: real dogs COCO calls "cat" are still
dogs, in a report's photos and in a camera's clip, and a search still finds them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from clipmaker import DogWalk, compose, fit, frame_times, mpdd_crops, video_frame, write_clip
from domain_world import models
from sighting_drafts import runtime, species

from embeddings import species as species_model
from embeddings.detector import PetDetector
from embeddings.embedder import crop_box
from embeddings.errors import ModelError
from embeddings.images import load_rgb
from search_party.errors import UserError
from search_party.ingest.pipeline import process_clip
from search_party.search.query_photos import find_animal, query_from_photos

FIXTURES = Path(__file__).resolve().parent / "fixtures"
COCO_CALLS_IT_A_CAT = "177"  # a real MPDD dog (a report dog) that COCO labels "cat" in most photos


def dog_177_photos() -> list[Path]:
    return sorted((FIXTURES / "reid" / "mpdd" / COCO_CALLS_IT_A_CAT).glob("*.jpg"))


def test_a_dog_coco_calls_a_cat_is_a_dog_to_the_species_head():
    detector = PetDetector.cached("picodet_s_416", runtime())
    called_cat = 0
    for path in dog_177_photos():
        rgb = load_rgb(path)
        for pet in detector.predict(rgb):
            called_cat += pet.label == "cat"  # what COCO's label alone would have decided
            assert species().predict([crop_box(rgb, pet.box)])[0] > 0.9, path.name
    assert called_cat >= 5
    chelsea = load_rgb(FIXTURES / "images" / "skimage_chelsea.png")
    (cat,) = detector.predict(chelsea)
    assert species().predict([crop_box(chelsea, cat.box)])[0] < species_model.SPECIES_FLOOR


def test_a_report_of_that_dog_is_accepted_and_its_photos_searched():
    """Before: "no dog found in photo 1 (it seems to show a cat)" for every photo of dog 177."""
    query = query_from_photos(dog_177_photos()[:3], models()["models"], species="dog")
    assert query.vectors.shape[0] == 3 and query.species == "dog"
    cat_photo = load_rgb(FIXTURES / "images" / "skimage_chelsea.png")
    refused = find_animal(cat_photo, "dog", models()["models"])
    assert refused.box is None and refused.seen == ("cat",)  # a cat stays a cat


def test_a_camera_clip_of_that_dog_is_a_dog_sighting(tmp_path):
    """A real clip composed from dog 177's real crops over a real CCTV frame."""
    background = fit(video_frame(FIXTURES / "videos" / "vtest_pedestrians_15s.mp4"), 640, 480)
    crops = list(mpdd_crops(FIXTURES / "reid" / "mpdd", COCO_CALLS_IT_A_CAT).values())
    walk = DogWalk(crops=crops, enter=0.0, leave=3.0, height=220, y=0.95)
    clip = write_clip(tmp_path / "gate.mp4", compose(background, [walk], frame_times(3.0, 10)), fps=10)
    result = process_clip(clip, start_time=None, models=models()["models"])
    assert result.sightings, "the dog was not found at all"
    assert [s.label for s in result.sightings] == ["dog"] * len(result.sightings)
    assert min(s.p_dog for s in result.sightings) > 0.9


def test_one_animal_seen_in_several_crops_pools_the_evidence():
    head = species()
    crops = [load_rgb(p) for p in dog_177_photos()[:4]]
    each = head.predict(crops).astype(np.float64)
    pooled = head.of_animal(crops)
    logits = np.log(each / (1 - each))
    assert pooled == pytest.approx(1 / (1 + np.exp(-logits.mean())), rel=1e-5)
    features = head.features.predict(crops)
    assert head.of_animal(crops, features) == pytest.approx(pooled, rel=1e-5)


def test_a_head_fitted_on_other_features_or_a_broken_file_is_refused(tmp_path):
    """Tried: a head whose features are another model's, a file that is not a head, one species."""
    head = species()
    other = tmp_path / "species_lite0.json"
    species_model.write_head(other, head.weights, head.bias, "lite0-trained-0000000000000000", {})
    with pytest.raises(ModelError, match="fitted on lite0-trained"):
        species_model.SpeciesClassifier.from_head("species_lite0", species_model.read_head(other), head.features)
    (tmp_path / "broken.json").write_text("{\"weights\": [1, 2]}")
    with pytest.raises(ModelError, match="is not a species head"):
        species_model.read_head(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="both dogs and cats"):
        species_model.fit(np.ones((4, 1280), np.float32), np.ones(4, bool), l2=1e-5)


def _small_data(root: Path, shared_data: Path) -> Path:
    """A data folder shaped like ../shared/data with a handful of real photos of each kind."""
    (root / "reid").mkdir(parents=True)
    for name in ("mpdd", "dogfacenet"):
        (root / "reid" / name).symlink_to(FIXTURES / "reid" / name)
    (root / "negatives").mkdir()
    (root / "negatives" / "cats").symlink_to(shared_data / "negatives" / "cats")
    for folder, key, keep in (("oxford_iiit_pet_more", "file", 12), ("oxford_iiit_pet", "path", 3)):
        source = shared_data / "breeds" / folder
        out = root / "breeds" / folder
        out.mkdir(parents=True)
        with open(source / "labels.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        chosen: dict[str, list[dict]] = {}
        for row in rows:
            chosen.setdefault(row["breed"], []).append(row)
        picked = [r for breed_rows in chosen.values() for r in breed_rows[:keep]]
        with open(out / "labels.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=[key, "species", "breed"])
            writer.writeheader()
            for row in picked:
                target = out / row[key]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source / row[key])
                writer.writerow({key: row[key], "species": row["species"], "breed": row["breed"]})
    return root


def test_train_and_eval_species_commands_on_real_photos(runner, tmp_path, shared_data):
    data = _small_data(tmp_path / "data-set", shared_data)
    out = tmp_path / "head.json"
    trained = runner("train", "species", "--data", str(data), "--out", str(out))
    assert "calibration log loss by L2" in trained.output
    head = json.loads(out.read_text())
    assert len(head["weights"]) == 1280 and head["features"].startswith("lite0-imagenet-")
    rows = [json.loads(line) for line in runner("eval", "species", "--data", str(data), "--json").output.splitlines()]
    names = [r["name"] for r in rows]
    assert names[0].startswith("unseen breeds") and "mpdd report dogs" in names
    unseen = rows[0]
    assert unseen["photos"] == 3 * 34  # three of each breed the head never trained on
    judged = unseen["photos"] - unseen["no_pet"]
    wrong = unseen["head"]["dog"]["cat"] + unseen["head"]["cat"]["dog"]
    assert judged > 90 and wrong <= 3
    missing = runner("eval", "species", "--data", str(tmp_path / "nowhere"), ok=False)  # tried: no data
    assert isinstance(missing.exception, UserError) and "pass --data" in str(missing.exception)
