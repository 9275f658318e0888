"""The photos the species head learns from and is judged on, read from a data folder laid out as
``../shared/data`` (see its MANIFEST.md), and the judging itself.

Learns from (``training_crops``, part "train"):
- the re-ID sets' training dogs (``reid/mpdd`` whole bodies, ``reid/dogfacenet`` faces), the
  same 70 % split by identity the embedder was trained on;
- ``breeds/oxford_iiit_pet_more`` (320 cats of two breeds, 40 dogs of one; CC BY-SA 4.0) and
  the cats in ``negatives/cats``, each cut out by the pet detector as a camera's crop would be.
Chooses its regularisation on (part "calibrate"): one in five of oxford_iiit_pet_more's photos
(by a hash of the file name) and the re-ID sets' calibration dogs.

Judged on what it never saw (``evaluation_sets``):
- ``breeds/oxford_iiit_pet`` without the three breeds above: 10 cat and 24 dog breeds;
- the re-ID sets' *report* dogs (embeddings/weights/report_ids_*.txt).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings import reid_data
from embeddings.detector import Detection, PetDetector
from embeddings.embedder import CROP_MARGIN, crop_box
from embeddings.images import load_rgb
from embeddings.registry import WEIGHTS_DIR

TRAINING_BREEDS = ("Abyssinian", "Bengal", "american_bulldog")  # oxford_iiit_pet_more's


@dataclass(frozen=True)
class Photo:
    """One animal of known species: its crop (None when the detector found no pet) and COCO's
    label for it; ``part`` is "train", "calibrate" or "report"."""

    source: str
    is_dog: bool
    crop: np.ndarray | None
    coco_label: str | None
    part: str = "report"


def _largest(pets: list[Detection]) -> Detection | None:
    return max(pets, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]), default=None)


def _detected(path: Path, is_dog: bool, source: str, detector: PetDetector, part: str = "report") -> Photo:
    rgb = load_rgb(path)
    pet = _largest(detector.predict(rgb))
    if pet is None:
        return Photo(source, is_dog, None, None, part)
    return Photo(source, is_dog, crop_box(rgb, pet.box, CROP_MARGIN), pet.label, part)


def _reid_dogs(root: Path, ids: set[str], source: str, part: str) -> Iterator[Photo]:
    for item in reid_data.read_folder(root, ids):
        yield Photo(source, True, load_rgb(item.path), None, part)


def _calibrates(path: Path) -> bool:
    return int(hashlib.sha256(path.name.encode()).hexdigest(), 16) % 5 == 0


def _breed_rows(folder: Path) -> Iterator[tuple[Path, str, str]]:
    with open(folder / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            yield folder / (row.get("path") or row["file"]), row["species"], row["breed"]


def training_crops(data_root: Path, detector: PetDetector) -> Iterator[Photo]:
    for name in ("mpdd", "dogfacenet"):
        root = data_root / "reid" / name
        train_ids, _ = reid_data.split_identities({it.identity for it in reid_data.read_folder(root)})
        yield from _reid_dogs(root, set(train_ids), f"reid/{name} training dogs", "train")
        calibrate = reid_data.read_ids_file(WEIGHTS_DIR / f"calibrate_ids_{name}.txt")
        yield from _reid_dogs(root, calibrate, f"reid/{name} calibration dogs", "calibrate")
    for path, species, _ in _breed_rows(data_root / "breeds" / "oxford_iiit_pet_more"):
        yield _detected(path, species == "dog", "breeds/oxford_iiit_pet_more", detector,
                        "calibrate" if _calibrates(path) else "train")
    for path in sorted((data_root / "negatives" / "cats").glob("*")):
        yield _detected(path, False, "negatives/cats", detector, "train")


def evaluation_sets(data_root: Path, detector: PetDetector) -> dict[str, list[Photo]]:
    unseen = [_detected(path, species == "dog", "unseen breeds", detector)
              for path, species, breed in _breed_rows(data_root / "breeds" / "oxford_iiit_pet")
              if breed not in TRAINING_BREEDS]
    sets = {"unseen breeds (Oxford-IIIT Pet sample)": unseen}
    for name in ("mpdd", "dogfacenet"):
        # Through the detector, as a camera's crop would be: COCO's label and misses are counted.
        ids = reid_data.read_ids_file(WEIGHTS_DIR / f"report_ids_{name}.txt")
        sets[f"{name} report dogs"] = [_detected(it.path, True, name, detector)
                                       for it in reid_data.read_folder(data_root / "reid" / name, ids)]
    return sets


@dataclass(frozen=True)
class SpeciesScores:
    """A confusion matrix (rows: true species) for one set, the head beside COCO's label."""

    name: str
    photos: int
    no_pet: int  # the detector found no pet: neither model had a crop to judge
    head: dict[str, dict[str, int]]  # true -> called -> count
    coco: dict[str, dict[str, int]]  # COCO's label of the same box
    under_floor: int  # animals whose own species got less than the search floor


def confusion(photos: list[Photo], p_dog: np.ndarray, floor: float, name: str) -> SpeciesScores:
    """``p_dog`` holds the head's P(dog) for the photos that have a crop, in order."""
    head = {t: {c: 0 for c in ("dog", "cat")} for t in ("dog", "cat")}
    coco = {t: {c: 0 for c in ("dog", "cat")} for t in ("dog", "cat")}
    judged = [p for p in photos if p.crop is not None]
    under = 0
    for photo, p in zip(judged, p_dog):
        truth = "dog" if photo.is_dog else "cat"
        head[truth]["dog" if p >= 0.5 else "cat"] += 1
        under += int((p if photo.is_dog else 1 - p) < floor)
        if photo.coco_label is not None:
            coco[truth][photo.coco_label] += 1
    return SpeciesScores(name, len(photos), len(photos) - len(judged), head, coco, under)
