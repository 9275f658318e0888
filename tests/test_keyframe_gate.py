"""The key-frame gate (search_party/ingest/video/keyframe_gate.py) on real composed camera clips:
H.264 without B-frames and a key frame every 1 or 2 s, as IP cameras record, a real MPDD dog over
a real CCTV frame.  A dog in view for two seconds, wherever it falls between key frames, is still
found; quiet stretches are never decoded in full."""

from __future__ import annotations

from pathlib import Path

import pytest
from clipmaker import DogWalk, compose, frame_times, mpdd_crops, video_frame, write_clip
from domain_world import models as world_models

from search_party.ingest.options import IngestOptions
from search_party.ingest.pipeline import process_clip
from search_party.ingest.video.decode import probe_clip
from search_party.ingest.video.keyframe_gate import GateCounts, decode_gated, gate_applies
from search_party.vision import Models

FPS, SECONDS = 10, 20.0


@pytest.fixture(scope="module")
def models() -> Models:
    return world_models()["models"]


def camera_clip(path: Path, fixtures: Path, *, gop_seconds: float, enter: float, seconds: float = SECONDS,
                bframes: bool = False) -> Path:
    """The real CCTV scene with sensor noise; MPDD dog 151 trots through in 2 s from ``enter``
    (as in tests/test_pipeline.py's two-second dog)."""
    scene = video_frame(fixtures / "videos" / "vtest_pedestrians_15s.mp4")
    crops = list(mpdd_crops(fixtures / "reid" / "mpdd", "151", 5).values())
    walk = DogWalk(crops, enter, enter + 2.0, height=140, y=0.92)
    keyint = str(round(gop_seconds * FPS))
    options = {"g": keyint, "keyint_min": keyint, "sc_threshold": "0", **({} if bframes else {"bf": "0"})}
    return write_clip(path, compose(scene, [walk], frame_times(seconds, FPS)), fps=FPS, options=options)


@pytest.mark.parametrize(("gop", "enter"), [(1.0, 11.3), (2.0, 11.3), (2.0, 12.1)])
def test_a_dog_in_view_for_two_seconds_is_found_and_quiet_gops_are_not_decoded(
        tmp_path, fixtures, models, gop, enter):
    path = camera_clip(tmp_path / "camera.mp4", fixtures, gop_seconds=gop, enter=enter)
    info = probe_clip(path)
    assert info.gops.longest_gap == pytest.approx(gop, abs=0.01) and not info.gops.reordered
    assert gate_applies(info, IngestOptions().max_gap_seconds)
    gated = process_clip(path, start_time=None, models=models)
    assert [s.label for s in gated.sightings] == ["dog"]
    stats = gated.stats
    # Key frames scanned 2 s apart: 10 spans; decoded in full: the dog's, their neighbours, the last.
    assert stats.gops == round(SECONDS / 2) and stats.gops_decoded <= 4 + 1
    assert stats.frames_decoded < stats.frames_in_clip / 2
    everything = process_clip(path, start_time=None, models=models,
                              options=IngestOptions(keyframe_gate=False))
    assert everything.stats.frames_decoded == stats.frames_in_clip and everything.stats.gops == 0
    assert [s.label for s in everything.sightings] == ["dog"]
    first, gate_first = everything.sightings[0].first_time, gated.sightings[0].first_time
    assert abs((gate_first - first).total_seconds()) <= 0.7  # seen as early, give or take a sample


def test_gated_frames_come_in_time_order_with_every_scanned_key_frame(tmp_path, fixtures):
    """A 1 s GOP: every other key frame is scanned, so the detector still sees one every 2 s."""
    path = camera_clip(tmp_path / "camera.mp4", fixtures, gop_seconds=1.0, enter=11.3)
    counts = GateCounts()
    times = [f.seconds for f in decode_gated(probe_clip(path), motion_threshold=0.001, motion_width=160,
                                             max_gap_seconds=2.0, counts=counts)]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert {float(s) for s in range(0, round(SECONDS), 2)} <= {round(t, 3) for t in times}  # every scanned key
    assert counts.gops == 10 and 2 <= counts.active <= 4
    assert any(11.3 <= t <= 13.3 and t % 1 for t in times)  # the dog's stretch decoded in full


def test_the_gate_stays_off_where_it_could_miss_a_dog_or_gains_nothing(tmp_path, fixtures):
    """Tried: B-frames (a phone's clip), key frames 4 s apart (longer than the detector's 2 s
    promise), and every frame a key frame."""
    max_gap = IngestOptions().max_gap_seconds
    phone = camera_clip(tmp_path / "phone.mp4", fixtures, gop_seconds=1.0, enter=3.0, seconds=6.0, bframes=True)
    long_gop = camera_clip(tmp_path / "long.mp4", fixtures, gop_seconds=4.0, enter=3.0, seconds=12.0)
    all_keys = camera_clip(tmp_path / "intra.mp4", fixtures, gop_seconds=0.1, enter=3.0, seconds=6.0)
    assert probe_clip(phone).gops.reordered and not gate_applies(probe_clip(phone), max_gap)
    assert not gate_applies(probe_clip(long_gop), max_gap)
    assert not gate_applies(probe_clip(all_keys), max_gap)
