"""Decoding volunteered clips: real fixture video, codecs cameras use, rotation, VFR timing, and
every kind of bad file refused with a clear one-line reason before any model runs."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import av
import numpy as np
import pytest
from clipmaker import compose, fit, frame_times, video_frame, write_clip

from embeddings.images import load_rgb
from search_party.errors import UserError
from search_party.ingest.pipeline import clip_start
from search_party.ingest.video.decode import (
    ClipError,
    decode_frames,
    probe_clip,
    upright_rgb,
)
from search_party.motion import small_grey


@pytest.fixture(scope="module")
def pedestrians(fixtures: Path) -> Path:
    return fixtures / "videos" / "vtest_pedestrians_15s.mp4"


@pytest.fixture(scope="module")
def scene(pedestrians: Path) -> np.ndarray:
    """A real CCTV frame (people on a campus path), shrunk so encoding stays fast."""
    return fit(video_frame(pedestrians, 0), 192, 144)


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory, scene: np.ndarray) -> Path:
    """2 s of the real scene at 10 fps, H.264 in MP4 (moov at the end, as cameras write it)."""
    path = tmp_path_factory.mktemp("clips") / "small.mp4"
    return write_clip(path, compose(scene, [], frame_times(2.0, 10)), fps=10)


def test_probe_real_cctv_clip(pedestrians: Path) -> None:
    info = probe_clip(pedestrians)
    assert (info.codec, info.container, info.width, info.height) == ("h264", "mov", 768, 576)
    assert info.rotation == 0
    assert info.frame_count == 150 and info.fps == pytest.approx(10.0)
    assert info.duration_seconds == pytest.approx(15.0, abs=0.01)
    assert info.creation_time is None  # the OpenCV sample carries no date


def test_frames_are_timed_from_pts(pedestrians: Path) -> None:
    info = probe_clip(pedestrians)
    times = [f.seconds for f in decode_frames(info)]
    assert len(times) == 150
    assert times == pytest.approx([i / 10 for i in range(150)], abs=1e-3)


def test_variable_frame_rate_clip_keeps_true_times(tmp_path: Path, scene: np.ndarray) -> None:
    # A phone dropping its frame rate in the dark: frames at irregular times, set as PTS.
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 1.2, 2.0, 2.05, 2.1, 3.0]
    path = write_clip(tmp_path / "vfr.mp4", compose(scene, [], times), times=times)
    info = probe_clip(path)
    assert [f.seconds for f in decode_frames(info)] == pytest.approx(times, abs=1e-3)
    assert 3.0 <= info.duration_seconds <= 3.2  # the last frame lasts until the next would


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_turns_frames_upright(tmp_path: Path, rotation: int) -> None:
    # A phone held upright stores sideways pixels plus a display matrix; we must undo it.
    upright = fit(load_rgb(Path(__file__).parent / "fixtures" / "images" / "zamba_dog_porch.jpg"),
                  128, 192)
    stored = np.ascontiguousarray(np.rot90(upright, -rotation // 90))
    path = write_clip(tmp_path / f"rot{rotation}.mp4", [stored] * 3, rotation=rotation,
                      options={"crf": "12"})
    info = probe_clip(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == (128, 192)
    frame = next(decode_frames(info)).frame
    shown = upright_rgb(frame, info.rotation).astype(np.int16)
    assert shown.shape == upright.shape
    assert np.abs(shown - upright).mean() < 6  # lossy codec; the wrong way round differs by ~40
    assert np.abs(shown - np.rot90(upright, 2)).mean() > 20


@pytest.mark.parametrize("name, codec, pix_fmt", [
    ("h265.mp4", "libx265", "yuv420p"),
    ("vp9.webm", "libvpx-vp9", "yuv420p"),
    ("mjpeg.avi", "mjpeg", "yuvj420p"),
    ("av1.mkv", "libsvtav1", "yuv420p"),
])
def test_camera_codecs_decode(tmp_path: Path, scene: np.ndarray, name: str, codec: str,
                              pix_fmt: str) -> None:
    path = write_clip(tmp_path / name, compose(scene, [], frame_times(1.0, 10)), codec=codec,
                      pix_fmt=pix_fmt)
    info = probe_clip(path)
    assert info.frame_count == 10 and (info.width, info.height) == (192, 144)
    assert len(list(decode_frames(info))) == 10
    frame = next(decode_frames(info)).frame
    grey = small_grey(frame, 64)
    assert 64 <= grey.shape[1] <= 128 and grey.dtype == np.uint8
    # The same picture as FFmpeg's own grey conversion, near enough for a motion test.
    reference = frame.reformat(width=grey.shape[1], height=grey.shape[0], format="gray",
                               interpolation="AREA").to_ndarray()
    assert np.abs(grey.astype(int) - reference).mean() < 12


def test_skipping_unreferenced_frames_keeps_times_in_order(pedestrians: Path) -> None:
    # x264's default B-frames are partly unreferenced; what is left stays in time order.
    info = probe_clip(pedestrians)
    times = [f.seconds for f in decode_frames(info, skip_nonref=True)]
    assert 0 < len(times) <= 150 and times == sorted(times)


def test_creation_time_from_container_and_start_time_choice(tmp_path: Path,
                                                            scene: np.ndarray) -> None:
    path = write_clip(tmp_path / "dated.mp4", compose(scene, [], frame_times(1.0, 10)),
                      metadata={"creation_time": "2024-05-01T10:00:00.000000Z"})
    info = probe_clip(path)
    recorded = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert info.creation_time == recorded
    assert clip_start(info, None) == (recorded, "container")
    given = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert clip_start(info, given) == (recorded, "given")  # 12:00+02:00 is 10:00 UTC
    assert clip_start(info, datetime(2024, 5, 1, 10, 0))[0] == recorded  # naive means UTC


def test_no_date_falls_back_to_file_time(small_clip: Path) -> None:
    when, source = clip_start(probe_clip(small_clip), None)
    assert source == "file date" and when.tzinfo is not None  # marked as a guess on the clip page


# ---- bad input: each test says what was tried ----

def _refused(path: Path, **limits) -> str:
    with pytest.raises(ClipError) as caught:
        probe_clip(path, **limits)
    assert isinstance(caught.value, UserError)  # the CLI prints it as one line, exit 2
    message = str(caught.value)
    assert path.name in message and "\n" not in message
    return message


def test_refuses_missing_file(tmp_path: Path) -> None:
    assert "no such file" in _refused(tmp_path / "never_uploaded.mp4")


def test_refuses_zero_length_file(tmp_path: Path) -> None:
    # An upload that never arrived: an empty file with a video name.
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "empty (0 bytes)" in _refused(tmp_path / "empty.mp4")


def test_refuses_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("meet at the park at six\n" * 50)
    assert "not a video file" in _refused(path)


def test_refuses_still_image_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "photo.mp4"
    shutil.copy(Path(__file__).parent / "fixtures" / "images" / "zamba_dog_porch.jpg", path)
    assert "not a video clip" in _refused(path)


def test_refuses_mp4_cut_in_half(tmp_path: Path, small_clip: Path) -> None:
    # Moov index at the end, as cameras write it: half the file has no index at all.
    data = small_clip.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert "damaged or incomplete" in _refused(path)


def test_refuses_faststart_mp4_cut_short(tmp_path: Path, scene: np.ndarray) -> None:
    # Index first (web "faststart"): the file opens, but its frames stop early.
    full = write_clip(tmp_path / "full.mp4", compose(scene, [], frame_times(2.0, 10)),
                      container_options={"movflags": "faststart"})
    data = full.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.6)])
    message = _refused(path)
    assert "incomplete" in message or "truncated" in message


def test_refuses_mp4_with_overwritten_index(tmp_path: Path, small_clip: Path) -> None:
    # Corruption: the last 1 kB (inside the moov index) replaced by random bytes.
    data = bytearray(small_clip.read_bytes())
    data[-1024:] = np.random.default_rng(0).integers(0, 256, 1024, dtype=np.uint8).tobytes()
    path = tmp_path / "scrambled.mp4"
    path.write_bytes(bytes(data))
    assert "damaged" in _refused(path)


def test_refuses_audio_only_file(tmp_path: Path) -> None:
    # A voice memo saved as .mp4: one AAC stream, no video.
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        t = np.arange(16000) / 16000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    assert "only sound" in _refused(path)


def test_refuses_unsupported_codec(tmp_path: Path, scene: np.ndarray) -> None:
    # FFV1 (an archival lossless codec) in MKV: FFmpeg could read it, but uploads never reach
    # decoders outside the camera codecs.
    path = write_clip(tmp_path / "archive.mkv", compose(scene, [], frame_times(0.5, 10)),
                      codec="ffv1")
    message = _refused(path)
    assert "ffv1" in message and "H.264" in message


def test_refuses_absurd_resolution(tmp_path: Path) -> None:
    # One black 8K frame (7680×4320, 33 megapixels), four times the 4K limit.
    path = tmp_path / "8k.mp4"
    write_clip(path, [np.zeros((4320, 7680, 3), np.uint8)], options={"preset": "ultrafast"})
    assert "megapixel limit" in _refused(path)


def test_refuses_tiny_resolution(tmp_path: Path, scene: np.ndarray) -> None:
    path = write_clip(tmp_path / "tiny.mp4", [fit(scene, 48, 32)] * 3)
    assert "too small" in _refused(path)


def test_refuses_clip_longer_than_limit(pedestrians: Path) -> None:
    # The 15 s fixture against a 10 s limit (the default is 10 minutes).
    assert "more than the 10 s limit" in _refused(pedestrians, max_clip_seconds=10)


def test_damaged_frames_mid_clip_are_refused_or_skipped(tmp_path: Path, small_clip: Path) -> None:
    # Random bytes over part of the picture data (the index intact): FFmpeg either stops with an
    # error, which must be a ClipError, or conceals it and flags the frames corrupt.
    data = bytearray(small_clip.read_bytes())
    start = len(data) // 3
    noise = np.random.default_rng(1).integers(0, 256, 600, dtype=np.uint8)
    data[start:start + 600] = noise.tobytes()
    path = tmp_path / "bitrot.mp4"
    path.write_bytes(bytes(data))
    try:
        frames = list(decode_frames(probe_clip(path)))
    except ClipError as exc:
        assert "damaged" in str(exc)
    else:
        assert any(f.frame.is_corrupt for f in frames)
