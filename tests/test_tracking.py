"""The tracker groups one animal's detections across sampled frames; each track keeps its best
few crops.  Box geometry is written out by hand; crop quality is judged on real MPDD crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from embeddings.images import load_rgb
from search_party.ingest.tracking import (
    CropCandidate,
    Track,
    Tracker,
    box_quality,
    crop_quality,
    drop_nested,
    sharpness,
)


def _walk(step: float, n: int, y: float = 300.0) -> list[tuple[float, float, float, float]]:
    return [(100 + i * step, y, 250 + i * step, y + 120) for i in range(n)]


def test_a_dog_walking_across_is_one_track() -> None:
    tracker = Tracker(max_age_seconds=3.0)
    for i, box in enumerate(_walk(60, 8)):  # 60 px per third of a second: IoU stays high
        tracker.update(i / 3, [("dog", 0.8, box)])
    tracks = tracker.finish()
    assert len(tracks) == 1 and len(tracks[0].observations) == 8


def test_a_running_dog_with_no_overlap_between_samples_is_still_one_track() -> None:
    tracker = Tracker(max_age_seconds=3.0)
    for i, box in enumerate(_walk(170, 4)):  # further than its own width each sample
        tracker.update(i / 3, [("dog", 0.8, box)])
    assert len(tracker.finish()) == 1


def test_two_dogs_far_apart_are_two_tracks() -> None:
    tracker = Tracker(max_age_seconds=3.0)
    for i, (a, b) in enumerate(zip(_walk(30, 5, y=50), _walk(-30, 5, y=420))):
        joined = tracker.update(i / 3, [("dog", 0.8, a), ("cat", 0.7, b)])
        assert joined[0][1] is not joined[1][1]
    tracks = tracker.finish()
    assert sorted(t.label for t in tracks) == ["cat", "dog"]


def test_a_part_box_inside_the_dog_does_not_start_a_track() -> None:
    # PicoDet sometimes adds a box around a dog's head; NMS keeps it (IoU 0.46 here).
    dog, head = ("dog", 0.57, (218, 393, 354, 516)), ("dog", 0.51, (219, 396, 284, 515))
    assert drop_nested([head, dog]) == [dog]
    tracker = Tracker(max_age_seconds=3.0)
    tracker.update(0.0, [dog, head])
    assert len(tracker.finish()) == 1


def test_tracks_end_after_max_age_unseen() -> None:
    tracker = Tracker(max_age_seconds=3.0)
    tracker.update(0.0, [("dog", 0.9, (0, 0, 100, 100))])
    assert tracker.expire(2.0) == []
    ended = tracker.expire(3.5)
    assert len(ended) == 1 and tracker.finish() == []


def test_label_is_voted_by_confidence() -> None:
    tracker = Tracker(max_age_seconds=3.0)
    for i, label in enumerate(["dog", "cat", "dog", "dog"]):
        tracker.update(i / 3, [(label, 0.8, (100, 100, 200, 200))])
    assert tracker.finish()[0].label == "dog"


@pytest.fixture(scope="module")
def dog_crop(fixtures: Path) -> np.ndarray:
    return load_rgb(fixtures / "reid" / "mpdd" / "096" / "train__96_c5s3_8.jpg")


def test_motion_blurred_crop_scores_lower(dog_crop: np.ndarray) -> None:
    blurred = np.asarray(Image.fromarray(dog_crop).filter(ImageFilter.GaussianBlur(3)))
    assert sharpness(blurred) < 0.5 * sharpness(dog_crop)
    assert crop_quality(0.8, blurred) < crop_quality(0.8, dog_crop)


def test_small_and_cut_off_boxes_score_lower() -> None:
    whole = box_quality((300, 200, 450, 330), 0.8, 1280, 720)
    tiny = box_quality((300, 200, 330, 225), 0.8, 1280, 720)
    at_edge = box_quality((0, 200, 150, 330), 0.8, 1280, 720)
    assert tiny < whole and at_edge < whole
    assert whole == pytest.approx(0.8)


def test_track_keeps_only_its_best_crops(dog_crop: np.ndarray) -> None:
    track = Track(1)
    for quality in [0.2, 0.9, 0.5, 0.7, 0.1, 0.8]:
        track.offer(CropCandidate(quality, 0.0, (0, 0, 1, 1), 0.9, dog_crop), keep=3)
    assert [c.quality for c in track.crops] == [0.9, 0.8, 0.7]
    assert not track.wants(0.6, keep=3) and track.wants(0.75, keep=3)


def test_reach_grows_with_time_between_detector_runs_up_to_a_limit() -> None:
    # 2.5 box diagonals away: too far a third of a second later, fine two thirds later
    # (the detector runs less often while motion goes on); 4 diagonals is never the same animal.
    box = (100.0, 300.0, 220.0, 390.0)  # diagonal 150 px
    for elapsed, jump, same in [(1 / 3, 375, False), (2 / 3, 375, True), (2.0, 600, False)]:
        tracker = Tracker(max_age_seconds=3.0)
        first = tracker.update(0.0, [("dog", 0.8, box)])[0][1]
        moved = (box[0] + jump, box[1], box[2] + jump, box[3])
        second = tracker.update(elapsed, [("dog", 0.8, moved)])[0][1]
        assert (first is second) == same, (elapsed, jump)


def test_travel_tells_a_walking_dog_from_a_thing_that_stays_put() -> None:
    walker, stone = Tracker(max_age_seconds=3.0), Tracker(max_age_seconds=3.0)
    for i, box in enumerate(_walk(40, 5)):
        walker.update(i / 3, [("dog", 0.8, box)])
        stone.update(i / 3, [("dog", 0.4, (161 + i % 2, 249, 191, 275))])  # jitter of a pixel
    assert walker.finish()[0].travel > 0.5
    assert stone.finish()[0].travel < 0.1
