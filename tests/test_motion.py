"""The cheap stages before the detector: which frames are sampled, and which of those moved.
Motion is tested on real footage: the pedestrian CCTV clip, and a real frame with sensor noise,
a brightness change, or a real MPDD dog crop walking across it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from clipmaker import DogWalk, compose, frame_times, mpdd_crops, video_frame

from search_party.ingest.video.decode import decode_frames, probe_clip
from search_party.ingest.video.sampling import FrameSampler
from search_party.motion import MotionDetector, small_grey

THRESHOLD = 0.001  # the IngestOptions default


def _grey(rgb: np.ndarray, width: int = 160) -> np.ndarray:
    """Area-average shrink to ``width`` in grey, as small_grey does with FFmpeg."""
    h, w = rgb.shape[:2]
    f = w // width
    grey = rgb[: h - h % f, : w - w % f].astype(np.float32).mean(axis=2)
    return grey.reshape(h // f, f, w // f, f).mean(axis=(1, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def scene(fixtures: Path) -> np.ndarray:
    return video_frame(fixtures / "videos" / "vtest_pedestrians_15s.mp4", 0)


def test_sampler_takes_a_steady_rate_from_a_30fps_clip() -> None:
    sampler = FrameSampler(sample_fps=3, detect_fps=1.5, max_gap_seconds=2)
    taken = [i for i in range(300) if sampler.take(i / 30)]
    assert len(taken) == 30
    assert np.diff(taken).tolist() == [10] * 29


def test_sampler_follows_timestamps_through_a_gap() -> None:
    # A VFR clip: 10 fps, then nothing for 2 s, then 10 fps again.
    times = [i / 10 for i in range(10)] + [3 + i / 10 for i in range(10)]
    sampler = FrameSampler(sample_fps=2, detect_fps=1, max_gap_seconds=2)
    taken = [t for t in times if sampler.take(t)]
    assert taken == pytest.approx([0.0, 0.5, 3.0, 3.5])


def _detector_runs(moving: list[bool]) -> list[int]:
    """Indices of the 3-fps samples the detector sees, given which samples moved."""
    sampler = FrameSampler(sample_fps=3, detect_fps=1.5, max_gap_seconds=2)
    return [i for i, moved in enumerate(moving) if sampler.wants_detector(i / 3, moved)]


def test_detector_runs_at_least_every_max_gap_on_a_still_scene() -> None:
    assert _detector_runs([False] * 19) == [0, 6, 12, 18]  # every 2 s


def test_detector_sees_a_new_arrival_at_once_then_at_its_own_rate() -> None:
    # Still for 1 s, then motion for 2 s (an animal crossing), then still again.
    moving = [False] * 3 + [True] * 6 + [False] * 6
    assert _detector_runs(moving) == [0, 3, 5, 7, 13]


def test_an_animal_in_view_for_two_seconds_is_looked_at_three_times() -> None:
    for arrival in range(9, 18):  # whichever sample it arrives on, after a still spell
        moving = [False] * arrival + [True] * 6 + [False] * 12
        runs = [i for i in _detector_runs(moving) if arrival <= i < arrival + 6]
        assert len(runs) >= 3, (arrival, runs)


def test_still_scene_with_sensor_noise_is_not_motion(scene: np.ndarray) -> None:
    motion = MotionDetector(THRESHOLD)
    frames = list(compose(scene, [], frame_times(3.0, 3), noise_sigma=4.0))
    results = [motion.update(_grey(f)) for f in frames]
    assert results[0] is True  # nothing to compare the first frame with
    assert not any(results[1:])


def test_brightness_change_is_not_motion(scene: np.ndarray) -> None:
    # A cloud or the camera's auto-exposure: the whole frame 15 % darker.
    motion = MotionDetector(THRESHOLD)
    motion.update(_grey(scene))
    assert not motion.update(_grey((scene * 0.85).astype(np.uint8)))


def test_a_walking_dog_is_motion(scene: np.ndarray, fixtures: Path) -> None:
    crops = list(mpdd_crops(fixtures / "reid" / "mpdd", "096", 5).values())
    walk = DogWalk(crops, enter=1.0, leave=4.0, height=100, y=0.9)
    motion = MotionDetector(THRESHOLD)
    results = {t: motion.update(_grey(f))
               for t, f in zip(frame_times(6, 3), compose(scene, [walk], frame_times(6, 3)))}
    assert all(moved for t, moved in results.items() if 1.0 <= t < 4.0)
    assert not any(moved for t, moved in results.items() if 0 < t < 1.0)
    # After the dog has gone, its ghost fades from the background within a second or two.
    assert not any(moved for t, moved in results.items() if t >= 5.5)


def test_people_walking_in_real_cctv_are_motion(fixtures: Path) -> None:
    info = probe_clip(fixtures / "videos" / "vtest_pedestrians_15s.mp4")
    motion, sampler = MotionDetector(THRESHOLD), FrameSampler(3, 1.5, 2)
    moved = [motion.update(small_grey(f.frame, 160)) for f in decode_frames(info)
             if sampler.take(f.seconds)]
    assert len(moved) == 45 and all(moved)
