"""The privacy audit (search_party.measure.privacy_audit) on real person photos and footage, through the
real report wizard and the real ingest, with the real detectors and embedder (invariant 1).

To stay within the suite's time, the audit here runs every image of ../shared/data/persons, the
fixture's images, the 15 s pedestrian CCTV clip and the 4 s puppy clip (the one real clip with a
dog, so a real stored sighting is checked too), and two of the dog-among-people composites; the
full audit over every image and video is `search-party audit privacy`.  The audit's verdict is
then shown to turn to FAIL on models that fail on purpose: one whose redaction is off (its
detector reports no person to blur) and one whose detector hands persons over as dogs.
"""

from __future__ import annotations

import subprocess
import sys
from typing import cast

import numpy as np
import pytest
from domain_world import settings_for

from embeddings.detector import Detection, PetDetector
from embeddings.images import load_rgb
from embeddings.redact import blur_regions
from search_party.measure.model_inputs import REID, SPECIES
from search_party.measure.privacy_audit import audit_sources, blurred_mask, run_audit, summary_lines
from search_party.vision import Models, load_models

CLIPS = ("vtest_pedestrians_15s.mp4", "dog_puppy_indoor_4s_480p.mp4")
COMPOSITES = ("lady.jpg", "group_2.jpg")


@pytest.fixture(scope="module")
def audit(shared_data, tmp_path_factory):
    work = tmp_path_factory.mktemp("audit")
    sources = [s for s in audit_sources(shared_data)
               if (s.kind == "image" and (s.dog is None or s.path.name in COMPOSITES))
               or (s.kind == "video" and s.path.name in CLIPS)]
    assert {s.path.name for s in sources if s.kind == "video"} == set(CLIPS)
    return run_audit(sources, settings_for(work / "settings"), work_dir=work)


def test_the_counts_go_in_the_test_output(audit, capsys):
    lines = summary_lines(audit)
    with capsys.disabled():
        print("\n" + "\n".join(lines[:lines.index("")]))
    assert audit.passed


def test_every_person_only_photo_is_refused_as_a_dog_and_as_a_cat(audit):
    person_only = [i for i in audit.images if i.person_only]
    assert len(person_only) == audit.person_images == 7  # everything in ../shared/data/persons
    assert audit.person_images_refused == 7
    for outcome in person_only:
        assert "no dog found in photo 1" in outcome.reason and "no cat found in photo 1" in outcome.reason


def test_no_person_vector_is_stored_and_every_stored_vector_was_checked(audit):
    assert audit.sightings_from_person_only_sources == 0
    assert audit.person_vectors() == 0 and audit.pets_that_are_persons() == 0
    assert audit.unverified_vectors == 0
    kinds = {(v.kind, v.source.rsplit("/", 1)[-1]) for v in audit.vectors if not v.composite}
    # The real dog clip's sighting was found again on its frame, and the accepted photos too.
    assert ("sighting", "dog_puppy_indoor_4s_480p.mp4") in kinds
    assert ("report photo", "zamba_dog_porch.jpg") in kinds


def test_every_crop_handed_to_a_model_was_recorded_found_again_and_shows_no_person(audit):
    """The re-ID embedder's and the species head's inputs, captured at the call."""
    assert audit.unlocated_inputs == 0
    reid, species = audit.model_inputs(REID), audit.model_inputs(SPECIES)
    # Every stored vector came from recorded crops: each report photo from one, each sighting
    # from one or more (its best crops); the shipped embedder is not ImageNet, so the species
    # head read its own crops (and saw the same ones).
    def count(checks, kind):
        return sum(c.kind == kind for c in checks)

    assert count(reid, "report photo") == count(audit.vectors, "report photo")
    assert count(reid, "sighting") >= count(audit.vectors, "sighting")
    assert {(i.kind, i.source) for i in reid} <= {(i.kind, i.source) for i in species}
    assert audit.person_vectors(composite=None) == 0 and audit.species_person_inputs() == 0
    # A pet box some detector also calls a person (the pasted dog, in a composite) reached the
    # models blurred: ingest blurs every person box of the frame before cutting crops.
    assert all(i.sharp_share <= 0.01 for i in audit.inputs if i.pet_is_a_person)

def test_a_dog_among_people_is_kept_and_the_people_around_it_are_blurred(audit):
    composites = [i for i in audit.images if i.composite]
    assert len(composites) == 2 and not any(i.refused for i in composites)
    checked = [v for v in audit.vectors if v.composite]
    assert {v.kind for v in checked} == {"sighting", "report photo"}
    assert all(v.redaction.person_pixels > 0 for v in checked)
    assert audit.stored_redaction.share >= 0.95
    assert audit.visible_persons == 0
    # Camera crops are embedded after redaction: the embedder saw (almost) no sharp person pixel
    # (measured on the crops it was handed), though the people were there beside the dog.
    handed = [i for i in audit.inputs if i.composite and i.kind == "sighting"]
    assert handed and sum(i.person_pixels for i in handed) > 0
    assert all(i.sharp_share <= 0.05 for i in handed)


def test_no_stored_image_keeps_metadata(audit):
    assert audit.stored_images >= 6
    assert audit.stored_images_with_metadata == 0


def test_redaction_covers_the_person_pixels_of_the_person_data(audit):
    assert audit.person_data_redaction.person_pixels > 500_000
    assert audit.person_data_redaction.share >= 0.95


def test_the_blurred_mask_is_exactly_what_blur_regions_changes(fixtures):
    """The audit's measuring instrument, checked on a real photo: every pixel the redaction
    changes is inside the mask, and pixels outside it are untouched."""
    rgb = load_rgb(fixtures / "images" / "astronaut.png")
    boxes = PetDetector.load("picodet_s_416").person_boxes(rgb)
    assert boxes
    mask = blurred_mask(rgb.shape[:2], boxes)
    changed = np.any(blur_regions(rgb, boxes) != rgb, axis=2)
    assert not (changed & ~mask).any()
    assert changed[mask].mean() > 0.9  # nearly every masked pixel of a real face and suit changes
    assert not blurred_mask(rgb.shape[:2], []).any()


def test_the_command_refuses_a_folder_without_persons_in_one_line(tmp_path):
    """Tried: a data folder with no persons/ in it."""
    result = subprocess.run([sys.executable, "-m", "search_party.cli", "audit", "privacy", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "has no persons/ folder" in result.stderr


class _FaultyDetector:
    """The real detector, passed through; each subclass breaks one thing on purpose."""

    def __init__(self, real: PetDetector) -> None:
        self.real, self.name = real, real.name

    def predict(self, image):
        return self.real.predict(image)

    def shrink(self, rgb):
        return self.real.shrink(rgb)

    def person_boxes(self, image):
        return self.real.person_boxes(image)


class _DetectorWithoutRedaction(_FaultyDetector):
    """Reports no person: the product's redaction then has nothing to blur."""

    def person_boxes(self, image) -> list:
        return []


class _DetectorCallingPersonsDogs(_FaultyDetector):
    """Hands each person box over as a confident dog too (and still reports it as a person)."""

    def predict(self, image):
        return [Detection("dog", 0.9, box) for box in self.real.person_boxes(image)] + self.real.predict(image)


def _audit_with(detector_kind: type, names: tuple[str, ...], shared_data, tmp_path):
    settings = settings_for(tmp_path / "settings")
    real = load_models(settings)
    models = Models(cast(PetDetector, detector_kind(real.detector)), real.embedder, real.species)
    sources = [s for s in audit_sources(shared_data, videos=False, fixture_dir=None)
               if s.path.name in names and (s.dog is not None) == (detector_kind is _DetectorWithoutRedaction)]
    return run_audit(sources, settings, work_dir=tmp_path, models=models)


def test_the_audit_fails_when_the_redaction_is_off(shared_data, tmp_path, capsys):
    """Tried: a dog among people (lady.jpg + the MPDD dog) through models whose detector reports
    no person, so nothing beside the dog is blurred before the crop is embedded."""
    audit = _audit_with(_DetectorWithoutRedaction, ("lady.jpg",), shared_data, tmp_path)
    lines = summary_lines(audit)
    with capsys.disabled():
        print("\n" + "\n".join(lines[:lines.index("")]))
    assert not audit.passed
    handed = audit.model_inputs(REID, composite=True)
    assert handed and audit.unlocated_inputs == 0
    assert sum(i.sharp_person_pixels for i in handed) > 0.5 * sum(i.person_pixels for i in handed)
    assert audit.person_vectors(composite=True) > 0


def test_the_audit_fails_when_a_person_crop_is_embedded(shared_data, tmp_path, capsys):
    """Tried: a person-only photo (lady.jpg) through models whose detector calls each person a
    dog: the wizard and ingest then hand the person's crop to the models.  Ingest still blurs
    every person box before cutting, so its crops arrive blurred; the wizard keeps the pet box
    sharp, so its crop is the person, sharp."""
    audit = _audit_with(_DetectorCallingPersonsDogs, ("lady.jpg",), shared_data, tmp_path)
    lines = summary_lines(audit)
    with capsys.disabled():
        print("\n" + "\n".join(lines[:lines.index("")]))
    assert not audit.passed
    assert any(i.pet_is_a_person for i in audit.model_inputs(SPECIES))
    photo = [i for i in audit.model_inputs(REID) if i.kind == "report photo"]
    assert photo and all(i.pet_is_a_person and i.shows_a_person for i in photo)
    assert audit.person_vectors() > 0
