"""Compose real test clips with PyAV: real MPDD dog crops moving over a real background frame.

No real camera clip with a dog in it exists in ../shared/data (see its MANIFEST.md), so the tests
build one the way the manifest suggests: every pixel comes from real footage or photos — a frame
of the OpenCV pedestrian CCTV clip or a camera-trap photo as the scene, MPDD crops (cut from
street video) as the dog — and only the motion is made up.  A little sensor noise is added so the
scene is never perfectly still, as no real camera is.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from embeddings.images import load_rgb


@dataclass(frozen=True)
class DogWalk:
    """One dog in view between ``enter`` and ``leave`` (seconds), going from ``start_x`` to
    ``end_x`` (fractions of the room left and right of it; equal for a dog standing still),
    cycling through its crops every ``pose_seconds`` so its pose changes as it walks."""

    crops: Sequence[np.ndarray]
    enter: float
    leave: float
    height: int  # the dog's height in the frame, pixels
    y: float = 0.7  # where its feet are, as a fraction of the frame height
    start_x: float = 0.0
    end_x: float = 1.0
    pose_seconds: float = 0.5


def mpdd_crops(root: Path, identity: str, sequence: int | None = None) -> dict[str, np.ndarray]:
    """Crops of one MPDD dog per ``labels.csv`` (path, identity, s), optionally of one sequence."""
    with (root / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["identity"] == identity]
    return {r["path"]: load_rgb(root / r["path"]) for r in rows
            if sequence is None or int(r["s"]) == sequence}


def video_frame(path: Path, index: int = 0) -> np.ndarray:
    """Frame ``index`` of a real clip as RGB, to serve as a scene."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise ValueError(f"{path} has fewer than {index + 1} frames")


def fit(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop ``rgb`` to the aspect of width×height, then resize to it."""
    h, w = rgb.shape[:2]
    scale = min(w / width, h / height)
    cw, ch = int(width * scale), int(height * scale)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    img = Image.fromarray(rgb[y0:y0 + ch, x0:x0 + cw]).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(img)


def _scaled(crop: np.ndarray, height: int) -> np.ndarray:
    width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    return np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.LANCZOS))


def compose(background: np.ndarray, walks: Sequence[DogWalk], times: Iterable[float],
            noise_sigma: float = 2.0, seed: int = 0) -> Iterator[np.ndarray]:
    """One RGB frame per time in ``times``: the scene with sensor noise and every dog in view."""
    rng = np.random.default_rng(seed)
    # A few noise fields, cycled: as good as fresh noise for a codec, and ~50× cheaper to make.
    noise = [rng.normal(0, noise_sigma, background.shape).astype(np.int16) for _ in range(8)]
    scene = background.astype(np.int16)
    scaled = [[_scaled(c, w.height) for c in w.crops] for w in walks]
    fh, fw = background.shape[:2]
    for i, t in enumerate(times):
        frame = np.clip(scene + noise[i % len(noise)], 0, 255).astype(np.uint8)
        for walk, crops in zip(walks, scaled):
            if not walk.enter <= t < walk.leave:
                continue
            crop = crops[int((t - walk.enter) / walk.pose_seconds) % len(crops)]
            ch, cw = crop.shape[:2]
            progress = (t - walk.enter) / (walk.leave - walk.enter)
            x = round((walk.start_x + progress * (walk.end_x - walk.start_x)) * (fw - cw))
            y = min(fh - ch, max(0, round(walk.y * fh) - ch))
            frame[y:y + ch, x:x + cw] = crop
        yield frame


def write_clip(path: Path, frames: Iterable[np.ndarray], *, fps: float = 10,
               times: Sequence[float] | None = None, codec: str = "libx264",
               pix_fmt: str = "yuv420p", rotation: int = 0, options: dict[str, str] | None = None,
               container_options: dict[str, str] | None = None,
               metadata: dict[str, str] | None = None) -> Path:
    """Encode RGB frames with PyAV.  ``times`` (seconds, one per frame) makes a variable-frame-rate
    clip by setting each frame's PTS; ``rotation`` writes a display matrix (degrees CCW)."""
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w", options=container_options or {}) as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        assert isinstance(stream, av.VideoStream)
        stream.pix_fmt = pix_fmt
        defaults = {"preset": "veryfast"} if codec == "libx264" else {}
        stream.options = {**defaults, **(options or {})}
        if times is not None:
            stream.codec_context.time_base = time_base
        for i, rgb in enumerate(frames):
            if i == 0:
                stream.height, stream.width = rgb.shape[:2]
                if rotation:
                    stream.set_display_rotation(rotation)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = round(times[i] / time_base), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def frame_times(seconds: float, fps: float) -> list[float]:
    """Constant-rate frame times for a clip of ``seconds``."""
    return [i / fps for i in range(round(seconds * fps))]


FIXTURE_MPDD = Path(__file__).resolve().parent / "fixtures" / "reid" / "mpdd"
BENCH_SCENE = "negatives/camera_trap_ena24/eastern_fox_squirrel__352.jpg"


def outdoor_clip(path: Path, scene: Path, *, seconds: float = 30.0, fps: float = 30.0,
                 width: int = 1280, height: int = 720, bframes: bool = True) -> Path:
    """The bench clip: a real outdoor camera-trap scene (green undergrowth, daylight) at 720p in
    H.264, empty but for sensor noise except while two real MPDD dogs cross it — dog 096 left to
    right from 8 to 14 s, dog 182 right to left from 20 to 25 s (scaled to a 30 s clip).
    ``bframes=False`` encodes as most IP cameras do: no B-frames, a keyframe every second."""
    scale = seconds / 30.0
    walks = [
        DogWalk(list(mpdd_crops(FIXTURE_MPDD, "096", 5).values()), 8 * scale, 14 * scale,
                height=round(height / 4), y=0.85),
        DogWalk(list(mpdd_crops(FIXTURE_MPDD, "182", 4).values()), 20 * scale, 25 * scale,
                height=round(height / 4.5), y=0.75, start_x=1.0, end_x=0.0),
    ]
    options = {} if bframes else {"bf": "0", "g": str(round(fps))}
    times = frame_times(seconds, fps)
    return write_clip(path, compose(fit(load_rgb(scene), width, height), walks, times),
                      fps=fps, options={"preset": "medium", **options})


CAMERA_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4mp": (2560, 1440)}
CAMERA_KBPS = {"720p": 2000, "1080p": 4000, "4mp": 6000}  # typical main-stream bit rates


def camera_clip(path: Path, scene: Path, *, size: str = "1080p", codec: str = "h264",
                gop_seconds: float = 2.0, seconds: float = 60.0, fps: float = 25.0) -> Path:
    """A mostly still IP-camera clip: the bench scene with sensor noise for ``seconds``, and one
    real MPDD dog (151, a third of the frame high) crossing it from 20 s to 30 s.  Encoded as cameras do: no B-frames, a
    key frame every ``gop_seconds``, a capped bit rate (so P-frames carry the noise, as a real
    camera's do)."""
    width, height = CAMERA_SIZES[size]
    kbps = CAMERA_KBPS[size]
    keyint = str(round(gop_seconds * fps))
    walk = DogWalk(list(mpdd_crops(FIXTURE_MPDD, "151", 5).values()), 20.0, 30.0, height=round(height / 3), y=0.9)
    if codec == "h264":
        encoder, options = "libx264", {"preset": "veryfast", "bf": "0", "g": keyint, "keyint_min": keyint,
                                       "sc_threshold": "0", "b": f"{kbps}k", "maxrate": f"{kbps}k",
                                       "bufsize": f"{kbps}k"}
    else:
        encoder, options = "libx265", {"preset": "veryfast", "x265-params": (
            f"keyint={keyint}:min-keyint={keyint}:bframes=0:scenecut=0:open-gop=0:bitrate={kbps}:"
            f"vbv-maxrate={kbps}:vbv-bufsize={kbps}:log-level=error")}
    frames = compose(fit(load_rgb(scene), width, height), [walk], frame_times(seconds, fps))
    return write_clip(path, frames, fps=fps, codec=encoder, options=options)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write a composed bench clip: the 720p outdoor clip "
                                     "(default), or with --camera a mostly still IP-camera clip.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data",
                        help="../shared/data (holds the camera-trap scene)")
    parser.add_argument("--seconds", type=float, default=None, help="default 30 (outdoor), 60 (--camera)")
    parser.add_argument("--fps", type=float, default=None, help="default 30 (outdoor), 25 (--camera)")
    parser.add_argument("--no-bframes", action="store_true", help="encode like an IP camera")
    parser.add_argument("--camera", action="store_true", help="a mostly still IP-camera clip")
    parser.add_argument("--size", choices=sorted(CAMERA_SIZES), default="1080p")
    parser.add_argument("--codec", choices=("h264", "h265"), default="h264")
    parser.add_argument("--gop", type=float, default=2.0, help="seconds between key frames (--camera)")
    args = parser.parse_args()
    if args.camera:
        camera_clip(args.out, args.data / BENCH_SCENE, size=args.size, codec=args.codec, gop_seconds=args.gop,
                    seconds=args.seconds or 60.0, fps=args.fps or 25.0)
    else:
        outdoor_clip(args.out, args.data / BENCH_SCENE, seconds=args.seconds or 30.0, fps=args.fps or 30.0,
                     bframes=not args.no_bframes)
    print(args.out)
