"""Open a volunteered clip with PyAV (FFmpeg): refuse unusable files first, then decode cheaply.

``probe_clip`` reads the container and demuxes every video packet (no decoding, a few ms) so a
truncated, empty, audio-only, oversized or overlong file is refused with one clear sentence before
any model runs.  ``decode_frames`` then yields frames with their time from their own PTS, so
variable-frame-rate clips get true times, and lets FFmpeg skip frames nothing else refers to.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np

from search_party.errors import UserError

DEFAULT_MAX_CLIP_SECONDS = 600.0
DEFAULT_MAX_PIXELS = 3840 * 2160  # 4K: the largest a neighbourhood camera records
MIN_SIDE = 64
# Decoders we accept: what cameras and phones record.  FFmpeg decodes hundreds of formats; the
# rarely used ones are where its security bugs live, so an upload never reaches them.
SUPPORTED_CODECS = {"h264": "H.264", "hevc": "H.265", "vp9": "VP9", "vp8": "VP8", "av1": "AV1",
                    "mjpeg": "MJPEG", "mpeg4": "MPEG-4"}
SUPPORTED_CONTAINERS = {"mov": "MP4/MOV", "mp4": "MP4/MOV", "matroska": "MKV/WebM",
                        "webm": "MKV/WebM", "avi": "AVI", "mpegts": "MPEG-TS"}
_SUPPORTED_CODECS_TEXT = "H.264, H.265, VP9, AV1 or MJPEG"
# A clip is truncated when its frames stop this much before the length its container declares.
_TRUNCATION_SLACK_SECONDS = 0.5


class ClipError(UserError):
    """A file that is not a usable clip; the message names the file and says what to do."""


@dataclass(frozen=True)
class ClipInfo:
    """What ``probe_clip`` learned; width and height are as displayed, after rotation."""

    path: Path
    container: str
    codec: str
    width: int
    height: int
    rotation: int  # degrees to turn decoded frames counterclockwise: 0, 90, 180 or 270
    duration_seconds: float
    frame_count: int
    fps: float
    creation_time: datetime | None  # from the container, UTC; None when it has none
    gops: GopLayout = field(default_factory=lambda: GopLayout(0, math.inf, True))


@dataclass(frozen=True)
class GopLayout:
    """Where the key frames are, from demuxing alone: how many, the longest time between two
    (seconds; infinite with fewer than two), and whether frames arrive out of display order
    (B-frames, as phones record; IP cameras send none)."""

    keyframes: int
    longest_gap: float
    reordered: bool


@dataclass
class TimedFrame:
    """A decoded frame and its time in seconds from the start of the clip."""

    seconds: float
    frame: av.VideoFrame


def _damaged(name: str, exc: Exception) -> ClipError:
    return ClipError(
        f"{name} is damaged or incomplete and cannot be decoded ({_reason(exc)}); "
        "send the whole clip again"
    )


def _reason(exc: Exception) -> str:
    text = str(exc).split(":")[0] if isinstance(exc, av.error.FFmpegError) else str(exc)
    return getattr(exc, "strerror", None) or text or type(exc).__name__


def _looks_like_mp4(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(12)[4:8] == b"ftyp"


def _open(path: Path) -> av.container.InputContainer:
    name = path.name
    if not path.exists():
        raise ClipError(f"{name}: no such file")
    if not path.is_file():
        raise ClipError(f"{name} is not a file")
    if path.stat().st_size == 0:
        raise ClipError(f"{name} is empty (0 bytes); the upload did not arrive, send it again")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        if _looks_like_mp4(path):
            raise ClipError(
                f"{name} is an MP4 that is damaged or incomplete ({_reason(exc)}); "
                "was the upload cut short? Send the whole clip again"
            ) from None
        raise ClipError(
            f"{name} is not a video file FFmpeg can read; send an MP4, MOV, MKV, WebM or AVI clip"
        ) from None


def _container_name(container: av.container.InputContainer) -> str | None:
    for part in container.format.name.split(","):
        if part in SUPPORTED_CONTAINERS:
            return part
    return None


def _creation_time(container: av.container.InputContainer,
                   stream: av.VideoStream) -> datetime | None:
    text = container.metadata.get("creation_time") or stream.metadata.get("creation_time")
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    # Muxers that were never told a date write 1904 or 1970: that is "unknown", not a time.
    return when if when.year >= 2000 else None


def _check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ClipError(f"{name} does not say how large its frames are; send the clip again")
    if width * height > max_pixels:
        raise ClipError(
            f"{name} is {width}×{height} pixels, more than the {max_pixels / 1e6:.1f} megapixel "
            "limit; export it at 4K (3840×2160) or smaller"
        )
    if min(width, height) < MIN_SIDE:
        raise ClipError(f"{name} is only {width}×{height} pixels; too small to show an animal")


def _check_length(name: str, seconds: float, limit: float) -> None:
    if seconds > limit:
        raise ClipError(
            f"{name} is {seconds:.1f} s long, more than the {limit:g} s limit; "
            "cut it into shorter clips"
        )


def _declared_seconds(container: av.container.InputContainer,
                      stream: av.VideoStream) -> float | None:
    """The video track's length as its header states it (the container's, which may be the
    longer audio track's, when the track states none)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return float(container.duration / av.time_base) if container.duration else None


def _upright_rotation(degrees: float) -> int:
    return int(round(degrees / 90.0)) * 90 % 360


def _scan_packets(name: str, stream: av.VideoStream,
                  container: av.container.InputContainer) -> tuple[int, float, int | None, GopLayout]:
    """Count the video packets, measure the time they span, decode the first frame for its rotation,
    and note where the key frames are.

    Demuxing without decoding costs milliseconds even for long clips, and it is what finds a file
    cut short: its packets stop before the length the container declares.
    """
    count, first, last, rotation = 0, math.inf, -math.inf, None
    keys: list[int] = []
    reordered, previous_pts = False, -math.inf
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            count += 1
            if packet.pts is not None:
                first = min(first, packet.pts)
                last = max(last, packet.pts + (packet.duration or 0))
                reordered = reordered or packet.pts < previous_pts
                previous_pts = packet.pts
                if packet.is_keyframe:
                    keys.append(packet.pts)
            if rotation is None:
                frames = stream.decode(packet)
                if frames:
                    rotation = _upright_rotation(frames[0].rotation)
        if rotation is None and count:
            frames = stream.decode(None)  # drain: a decoder with delay may hold the first frame
            if frames:
                rotation = _upright_rotation(frames[0].rotation)
    except (av.error.FFmpegError, OSError) as exc:
        raise _damaged(name, exc) from None
    tick = stream.time_base
    assert tick is not None, "FFmpeg gives every stream a time base"
    span = float((last - first) * tick) if count and last > first else 0.0
    gaps = [float((b - a) * tick) for a, b in zip(keys, [*keys[1:], last])]
    return count, span, rotation, GopLayout(len(keys), max(gaps) if len(keys) > 1 else math.inf, reordered)


def probe_clip(
    path: str | Path,
    *,
    max_clip_seconds: float = DEFAULT_MAX_CLIP_SECONDS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ClipInfo:
    """Validate a clip before any work is done on it; raise ClipError saying why if unusable."""
    path = Path(path)
    name = path.name
    with _open(path) as container:
        videos = container.streams.video
        if not videos:
            if container.streams.audio:
                raise ClipError(f"{name} holds only sound, no pictures; send a video clip")
            if _looks_like_mp4(path):  # an MP4 whose index no longer describes any track
                raise ClipError(f"{name} is an MP4 that is damaged: no video track can be read; "
                                "send the whole clip again")
            raise ClipError(f"{name} holds no video stream; send a video clip")
        stream = videos[0]
        container_name = _container_name(container)
        if container_name is None:
            raise ClipError(
                f"{name} is a {container.format.long_name} file, not a video clip; "
                "send an MP4, MOV, MKV, WebM, AVI or MPEG-TS clip"
            )
        codec = stream.codec_context.codec.canonical_name  # "av1" whichever decoder reads it
        if codec not in SUPPORTED_CODECS:
            raise ClipError(
                f"{name} is encoded with {stream.codec_context.codec.long_name} ({codec}), which "
                f"is not accepted; send {_SUPPORTED_CODECS_TEXT} (most cameras record H.264)"
            )
        coded_w, coded_h = stream.codec_context.width, stream.codec_context.height
        _check_size(name, coded_w, coded_h, max_pixels)
        declared = _declared_seconds(container, stream)
        if declared is not None:
            _check_length(name, declared, max_clip_seconds)  # refuse a 10-hour file unread
        created = _creation_time(container, stream)
        rate = stream.average_rate or stream.guessed_rate
        frame_count, span, rotation, gops = _scan_packets(name, stream, container)
    if frame_count == 0:
        raise ClipError(f"{name} contains no video frames; send the clip again")
    if rotation is None:
        raise ClipError(f"{name}: none of its {frame_count} frames could be decoded; "
                        "send the clip again")
    if declared is not None and span < declared - max(_TRUNCATION_SLACK_SECONDS, 0.1 * declared):
        raise ClipError(
            f"{name} is truncated: its frames stop at {span:.1f} s of the {declared:.1f} s it "
            "declares; was the upload cut short? Send the whole clip again"
        )
    _check_length(name, span, max_clip_seconds)
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    fps = float(rate) if rate else (frame_count / span if span > 0 else 0.0)
    return ClipInfo(path=path, container=container_name, codec=codec, width=width, height=height,
                    rotation=rotation, duration_seconds=span, frame_count=frame_count, fps=fps,
                    creation_time=created, gops=gops)


def decode_frames(info: ClipInfo, *, skip_nonref: bool = False,
                  threads: int = 0) -> Generator[TimedFrame, None, None]:
    """Every frame of a probed clip, in display order, timed from its own PTS.

    ``skip_nonref`` lets FFmpeg drop frames that no other frame refers to (most B-frames): they
    cost decoding time and, when only a few frames a second are looked at, add nothing.
    ``threads`` is FFmpeg's decoding threads, 0 for as many as it likes (frame and slice threads).
    """
    name = info.path.name
    with _open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        base = stream.start_time
        tick = stream.time_base
        assert tick is not None, "FFmpeg gives every stream a time base"
        step = 1.0 / info.fps if info.fps > 0 else 0.0
        previous = -step
        try:
            for frame in container.decode(stream):
                if frame.pts is None:  # no timestamp (rare raw streams): assume the nominal rate
                    seconds = previous + step
                else:
                    if base is None:
                        base = frame.pts
                    seconds = max(0.0, float((frame.pts - base) * tick))
                previous = seconds
                yield TimedFrame(seconds, frame)
        except (av.error.FFmpegError, OSError) as exc:
            raise _damaged(name, exc) from None


def upright_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    """The full-resolution frame as H×W×3 uint8 RGB, turned upright as a player would show it."""
    rgb: np.ndarray = frame.to_ndarray(format="rgb24")
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, rotation // 90))
    return rgb
