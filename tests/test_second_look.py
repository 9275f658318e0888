"""The second, closer look at moving regions (search_party.ingest.second_look): it finds a small
far dog the whole-frame look misses, keeps persons blurred, and finds no pet on real night-IR
CCTV without animals (tests/fixtures' Frigate clips and stills, where an NVR once saw a false dog).

The small dog is composed (tests/clipmaker.py) from real crops of MPDD dog 096, a dog of the
report split (embeddings/weights/report_ids_mpdd.txt) that no knob was tuned on, walking over a
real CCTV frame: no real camera clip with a dog exists in the data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from clipmaker import DogWalk, compose, fit, frame_times, mpdd_crops, video_frame, write_clip
from sighting_drafts import embedder, species

from embeddings.closer_look import look_closer, window
from embeddings.detector import PetDetector
from embeddings.images import load_rgb
from embeddings.registry import WEIGHTS_DIR
from embeddings.reid_data import read_ids_file
from search_party.errors import UserError
from search_party.ingest.options import IngestOptions
from search_party.ingest.pipeline import process_clip
from search_party.ingest.second_look import motion_boxes
from search_party.motion import changed_regions
from search_party.store.clip_results import ClipResult
from search_party.vision import Models

T0 = datetime(2025, 6, 1, 22, 0, tzinfo=UTC)
SMALL_DOG = ("096", 5)  # identity and sequence; 60 px tall in a 720p frame


@pytest.fixture(scope="module")
def models() -> Models:
    return Models(PetDetector.load(), embedder(), species())


def _run(path: Path, models: Models, regions: int) -> ClipResult:
    return process_clip(path, start_time=T0, models=models,
                        options=IngestOptions(second_look_regions=regions))


@pytest.fixture(scope="module")
def small_dog_clip(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert SMALL_DOG[0] in read_ids_file(WEIGHTS_DIR / "report_ids_mpdd.txt")
    scene = fit(video_frame(fixtures / "videos" / "vtest_pedestrians_15s.mp4", 0), 1280, 720)
    crops = list(mpdd_crops(fixtures / "reid" / "mpdd", *SMALL_DOG).values())
    walk = DogWalk(crops, 0.5, 4.5, height=60, y=0.8, start_x=0.2, end_x=0.7)
    path = tmp_path_factory.mktemp("small") / "small_dog_720p.mp4"
    return write_clip(path, compose(scene, [walk], frame_times(5.0, 10)), fps=10)


def test_a_small_far_dog_missed_by_the_first_look_is_found_by_the_second(small_dog_clip: Path,
                                                                          models: Models) -> None:
    first_only = _run(small_dog_clip, models, regions=0)
    assert first_only.sightings == []
    assert "second_look" not in first_only.stats.ms_per_stage
    both = _run(small_dog_clip, models, regions=2)
    assert [s.label for s in both.sightings] == ["dog"]
    sighting = both.sightings[0]
    # The box is in the frame's pixels, on the dog's path (feet at 80 % of 720 px, 60 px tall).
    x1, y1, x2, y2 = sighting.box
    assert 0.2 * 1280 - 60 < x1 < x2 < 0.7 * 1280 + 120
    assert 576 - 90 < y1 < y2 < 576 + 15
    assert both.stats.ms_per_stage["second_look"] > 0


def test_second_look_maps_persons_back_to_the_frame_for_blurring(fixtures: Path) -> None:
    # The pedestrian CCTV frame: persons found in a window come back in frame pixels, where
    # the whole-frame look finds them too (they are blurred before any crop is taken).
    det = PetDetector.load()
    rgb = video_frame(fixtures / "videos" / "vtest_pedestrians_15s.mp4", 0)
    whole = np.array(det.person_boxes(rgb))
    assert len(whole)
    target = whole[np.argmax((whole[:, 2] - whole[:, 0]) * (whole[:, 3] - whole[:, 1]))]
    x1, y1, x2, y2 = (float(v) for v in target)
    _, persons = look_closer(det, rgb, [(x1, y1, x2, y2)])
    assert persons
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in persons]
    assert any(target[0] <= cx <= target[2] and target[1] <= cy <= target[3] for cx, cy in centres)


def test_ir_night_cctv_without_animals_gives_no_pet_with_the_second_look(fixtures: Path,
                                                                          models: Models) -> None:
    # Real night-IR Frigate footage: a person mopping (v2), an IR switch (v3), no animals.
    clips = sorted((fixtures / "videos" / "frigate_ir_negatives").glob("*.mp4"))
    assert len(clips) == 3
    for clip in clips:
        result = _run(clip, models, regions=2)
        assert result.sightings == [], clip.name


def test_ir_yard_stills_give_no_pet_even_looked_at_closely_everywhere(fixtures: Path) -> None:
    # The spot where an NVR once drew a false "dog" (a sandbox object) and a person on IR: the
    # second look is run over every 104-px region of the image (overlapping by half), far more
    # than motion ever asks for, and finds no dog or cat anywhere.
    det = PetDetector.load()
    stills = sorted((fixtures / "images" / "frigate_ir").glob("*.jpg"))
    assert len(stills) == 2
    for still in stills:
        rgb = load_rgb(still)
        h, w = rgb.shape[:2]
        tiles = [(float(x), float(y), float(min(w, x + 104)), float(min(h, y + 104)))
                 for y in range(0, h, 52) for x in range(0, w, 52)]
        assert det.predict(rgb) == []
        pets, _ = look_closer(det, rgb, tiles)
        assert pets == [], still.name


def test_changed_regions_ignore_lone_noisy_pixels_and_rank_by_size() -> None:
    mask = np.zeros((90, 160), bool)
    mask[::7, ::9] = True  # scattered grain: no cell holds two changed pixels
    assert changed_regions(mask, 2) == []
    mask[40:52, 100:120] = True  # a moving dog
    mask[10:14, 10:14] = True  # something small
    assert changed_regions(mask, 2) == [(100, 40, 120, 52), (8, 8, 16, 16)]
    assert changed_regions(mask, 1) == [(100, 40, 120, 52)]


def test_motion_boxes_follow_the_frames_rotation() -> None:
    mask = np.zeros((90, 160), bool)  # the decoded picture, before turning upright
    mask[0:8, 0:8] = True  # its top-left corner
    assert motion_boxes(mask, 0, 1280, 720, 1) == [(0.0, 0.0, 64.0, 64.0)]
    # Turned 90° counter-clockwise (as upright_rgb does), the top-left corner is bottom-left.
    [(x1, y1, x2, y2)] = motion_boxes(mask, 90, 720, 1280, 1)
    assert (x1, x2) == (0.0, 64.0) and y2 == 1280.0


def test_window_stays_inside_the_frame() -> None:
    assert window((0, 0, 10, 10), 1280, 720, 416) == (0, 0, 208)  # 416 / MAX_ZOOM
    assert window((1270, 710, 1280, 720), 1280, 720, 416) == (1072, 512, 208)
    assert window((0, 0, 1280, 720), 1280, 720, 416) == (280, 0, 720)  # centred, at most the frame


def test_a_negative_number_of_regions_is_refused() -> None:
    # Tried: second_look_regions=-1.
    with pytest.raises(UserError, match="second_look_regions"):
        IngestOptions(second_look_regions=-1)
