"""process_clip end to end on real video: the committed CCTV and puppy clips, and clips composed
(tests/clipmaker.py) from real MPDD dog crops over a real CCTV frame, since no real camera clip
with a dog exists in the data (see ../shared/data/MANIFEST.md)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from clipmaker import DogWalk, compose, fit, frame_times, mpdd_crops, video_frame, write_clip
from PIL import Image
from sighting_drafts import runtime, species

from embeddings.detector import PetDetector
from embeddings.embedder import Embedder, crop_box
from embeddings.images import load_rgb
from search_party.ingest.options import IngestOptions
from search_party.ingest.pipeline import process_clip
from search_party.ingest.tracking import sharpness
from search_party.ingest.video.decode import ClipError
from search_party.store.clip_results import ClipResult, SightingDraft
from search_party.vision import Models

T0 = datetime(2025, 6, 1, 7, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def detector() -> PetDetector:
    return PetDetector.load()


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load("imagenet", runtime())


@pytest.fixture(scope="module")
def scene(fixtures: Path) -> np.ndarray:
    """A real fixed-camera CCTV frame: a campus path, grass, a few people standing."""
    return video_frame(fixtures / "videos" / "vtest_pedestrians_15s.mp4", 0)


@pytest.fixture(scope="module")
def mpdd(fixtures: Path) -> Path:
    return fixtures / "reid" / "mpdd"


def _run(path: Path, detector: PetDetector, embedder: Embedder, **kw) -> ClipResult:
    return process_clip(path, start_time=T0, models=Models(detector, embedder, species()), **kw)


def _check_draft(draft: SightingDraft, result: ClipResult, embedder: Embedder) -> None:
    assert draft.label in ("dog", "cat")
    assert T0 <= draft.first_time <= draft.last_time <= T0 + timedelta(
        seconds=result.stats.clip_seconds)
    assert draft.first_time.tzinfo is not None
    x1, y1, x2, y2 = draft.box
    assert 0 <= x1 < x2 <= result.stats.width and 0 <= y1 < y2 <= result.stats.height
    assert draft.vector.dtype == np.float32 and draft.vector.shape == (embedder.dim,)
    assert np.linalg.norm(draft.vector) == pytest.approx(1.0, abs=1e-4)
    k = draft.crop_vectors.shape[0]
    assert 1 <= k <= IngestOptions().crops_per_track and draft.crop_vectors.dtype == np.float32
    assert np.linalg.norm(draft.crop_vectors, axis=1) == pytest.approx(np.ones(k), abs=1e-4)
    assert draft.model_version == embedder.version
    thumb = Image.open(io.BytesIO(draft.thumbnail_jpeg))
    assert thumb.format == "JPEG" and max(thumb.size) <= 320
    assert not thumb.getexif() and "exif" not in thumb.info


def test_pedestrian_cctv_gives_no_sightings(fixtures: Path, detector, embedder) -> None:
    # Real CCTV, people only.  The detector calls a stone on the grass "dog" at 0.30-0.41 in
    # every frame; a track that never moves must score higher, which keeps it out.
    result = _run(fixtures / "videos" / "vtest_pedestrians_15s.mp4", detector, embedder)
    assert result.sightings == []
    assert result.stats.crops_embedded == 0
    assert result.stats.frames_detected > 0  # the detector did look


def test_puppy_clip_gives_a_dog_sighting(fixtures: Path, detector, embedder) -> None:
    done: list[float] = []
    result = _run(fixtures / "videos" / "dog_puppy_indoor_4s_480p.mp4", detector, embedder,
                  progress=done.append)
    dogs = [s for s in result.sightings if s.label == "dog"]
    assert len(dogs) >= 1
    for draft in result.sightings:
        _check_draft(draft, result, embedder)
    assert result.start_time == T0 and result.start_source == "given"
    assert done == sorted(done) and done[-1] == 1.0
    stats = result.stats
    assert (stats.width, stats.height, stats.codec) == (854, 480, "h264")
    assert stats.frames_detected <= stats.frames_motion_checked <= stats.frames_decoded


def test_composed_dog_matches_itself_in_other_sequences(tmp_path: Path, scene, mpdd, detector,
                                                        embedder) -> None:
    # MPDD dog 096, sequence 5, walking across the real CCTV scene; the gallery is every other
    # fixture crop: dog 096 from its other sequences (other days) and seven other dogs.
    walk = DogWalk(list(mpdd_crops(mpdd, "096", 5).values()), enter=1.0, leave=5.0, height=150,
                   y=0.9)
    path = write_clip(tmp_path / "walk.mp4", compose(scene, [walk], frame_times(6.0, 10)))
    result = _run(path, detector, embedder)
    assert [s.label for s in result.sightings] == ["dog"]
    draft = result.sightings[0]
    _check_draft(draft, result, embedder)
    assert T0 + timedelta(seconds=0.9) <= draft.first_time
    assert draft.last_time <= T0 + timedelta(seconds=5.1)
    with (mpdd / "labels.csv").open(newline="") as fh:
        gallery = [r for r in csv.DictReader(fh) if not (r["identity"] == "096" and r["s"] == "5")]
    vectors = embedder.predict([load_rgb(mpdd / r["path"]) for r in gallery])
    best = gallery[int(np.argmax(vectors @ draft.vector))]
    assert best["identity"] == "096" and best["s"] != "5"


def test_a_dog_in_view_for_two_seconds_is_found(tmp_path: Path, scene, mpdd, detector,
                                                embedder) -> None:
    # 16 s of a still CCTV scene (sensor noise only); MPDD dog 151 trots through in 2 s,
    # starting at an arbitrary 9.3 s.  Default settings: most still frames skip the detector.
    walk = DogWalk(list(mpdd_crops(mpdd, "151", 5).values()), enter=9.3, leave=11.3, height=140,
                   y=0.92)
    path = write_clip(tmp_path / "brief.mp4", compose(scene, [walk], frame_times(16.0, 10)))
    result = _run(path, detector, embedder)
    assert [s.label for s in result.sightings] == ["dog"]
    draft = result.sightings[0]
    assert T0 + timedelta(seconds=9.0) <= draft.first_time <= draft.last_time
    assert draft.last_time <= T0 + timedelta(seconds=11.6)
    stats = result.stats
    assert stats.frames_motion_checked == 48
    assert stats.frames_detected < stats.frames_motion_checked / 2


def test_thumbnail_blurs_a_person_beside_the_dog(tmp_path: Path, scene, mpdd, fixtures, detector,
                                                 embedder) -> None:
    # A real person (the astronaut photo) standing just behind a real dog (MPDD 096) on the
    # CCTV scene, both still: the dog's crop (box plus margin) takes in the person's edge.
    astronaut = load_rgb(fixtures / "images" / "astronaut.png")
    person = np.asarray(Image.fromarray(astronaut[:, 120:420]).resize((150, 230)))
    dog = mpdd_crops(mpdd, "096", 5)["096/train__96_c5s5_6.jpg"]
    stay = DogWalk([dog], enter=1.0, leave=6.0, height=160, y=0.93, start_x=0.5, end_x=0.5)
    frames = list(compose(scene, [stay], frame_times(6.0, 10), noise_sigma=0.0))
    for frame in frames[10:]:  # the person arrives with the dog
        frame[310:540, 450:600] = person
    # The person region as the detector sees it (the one box reaching into the dog's corner).
    persons = [b for b in detector.person_boxes(frames[-1]) if b[0] < 470 and b[3] > 500]
    assert len(persons) == 1
    person_mask = np.zeros_like(scene)
    x1, y1, x2, y2 = (round(v) for v in persons[0])
    person_mask[y1:y2, x1:x2] = 255
    result = _run(write_clip(tmp_path / "with_person.mp4", frames), detector, embedder)
    assert [s.label for s in result.sightings] == ["dog"]
    draft = result.sightings[0]
    plain = crop_box(frames[-1], draft.box, 0.1).astype(np.int16)
    inside = crop_box(person_mask, draft.box, 0.1)[..., 0] > 0
    thumb = np.asarray(Image.open(io.BytesIO(draft.thumbnail_jpeg))).astype(np.int16)
    assert thumb.shape == plain.shape and inside.mean() > 0.05
    rows, cols = np.nonzero(inside)
    person_part = np.s_[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    # The person's pixels lost their detail; the dog's, well away from the person, kept it.
    assert sharpness(thumb[person_part]) < 0.2 * sharpness(plain[person_part])
    far_left = plain.shape[1] // 3
    assert np.abs(thumb[:, :far_left] - plain[:, :far_left]).mean() < 6
    # The vector was made from the blurred crop too: no person's pixels reach the embedder.
    best_vector = draft.crop_vectors[0]
    from_blurred, from_plain = embedder.predict([thumb.astype(np.uint8), plain.astype(np.uint8)])
    assert float(best_vector @ from_blurred) > float(best_vector @ from_plain)


def test_rotated_phone_clip_gives_upright_boxes(tmp_path: Path, scene, mpdd, detector,
                                                embedder) -> None:
    # A phone held upright: sideways pixels plus a 90° display matrix.  The dog walks across
    # the bottom of the upright picture; boxes and thumbnail must be in upright coordinates.
    portrait = fit(scene, 360, 640)
    walk = DogWalk(list(mpdd_crops(mpdd, "096", 5).values()), enter=0.5, leave=3.5, height=130,
                   y=0.95)
    sideways = (np.ascontiguousarray(np.rot90(f, -1))
                for f in compose(portrait, [walk], frame_times(4.0, 10)))
    result = _run(write_clip(tmp_path / "portrait.mp4", sideways, rotation=90), detector, embedder)
    assert (result.stats.width, result.stats.height) == (360, 640)
    assert [s.label for s in result.sightings] == ["dog"]
    x1, y1, x2, y2 = result.sightings[0].box
    assert y1 > 640 * 0.6  # near the bottom of the upright picture, where the dog walks
    thumb = Image.open(io.BytesIO(result.sightings[0].thumbnail_jpeg))
    assert thumb.width > thumb.height  # a dog seen from the side, the right way up


def test_bad_clip_is_refused_with_a_clip_error(tmp_path: Path, detector, embedder) -> None:
    # A text file named .mp4 never reaches the models.
    path = tmp_path / "shopping.mp4"
    path.write_text("dog food, leash\n")
    with pytest.raises(ClipError, match="not a video file"):
        _run(path, detector, embedder)


class Cancelled(Exception):
    pass


def test_stopping_mid_clip_ends_the_decoding_thread(fixtures: Path, detector, embedder) -> None:
    # A worker told to stop raises from its progress callback, a fifth of the way in.
    def progress(fraction: float) -> None:
        if fraction > 0.2:
            raise Cancelled

    with pytest.raises(Cancelled):
        _run(fixtures / "videos" / "vtest_pedestrians_15s.mp4", detector, embedder,
             progress=progress)
    assert not [t for t in threading.enumerate() if t.name == "frame-feed"]


def test_bench_ingest_prints_one_json_object(fixtures: Path) -> None:
    from click.testing import CliRunner

    from search_party.cli import cli

    clip = fixtures / "videos" / "dog_puppy_indoor_4s_480p.mp4"
    out = CliRunner().invoke(cli, ["bench", "ingest", str(clip), "--json", "--repeats", "1",
                                   "--embedder", "imagenet"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["sightings"] >= 1 and result["clip_seconds"] == pytest.approx(4.0, abs=0.01)
    assert result["realtime_factor"] > 0 and result["decode_ratio"] > 0
    assert result["frames_detected"] <= result["frames_motion_checked"] <= result["frames_decoded"]


def test_bench_ingest_refuses_a_file_that_is_not_a_clip(tmp_path: Path) -> None:
    # A text file named .mp4, through the real console entry point: one line, exit 2.
    path = tmp_path / "readme.mp4"
    path.write_text("not a video\n")
    done = subprocess.run([sys.executable, "-m", "search_party.cli", "bench", "ingest", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: readme.mp4 is not a video file FFmpeg can read; "
        "send an MP4, MOV, MKV, WebM or AVI clip"]
    assert "Traceback" not in done.stderr
