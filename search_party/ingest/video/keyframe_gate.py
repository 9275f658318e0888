"""Decode densely only where the key frames say something changed.

Decoding is most of ingest's cost, and on a mostly still camera clip most of it buys nothing.
An IP camera's stream is a key frame every 1-2 s (a GOP) and P-frames that each need the one
before, so a P-frame cannot be skipped alone, but a whole GOP can.  ``decode_gated`` demuxes
the clip once, one span ahead, where a span runs from one *scanned* key frame to the next: as
few key frames are scanned as keep them at most ``max_gap_seconds`` apart (every other one of
a 1 s GOP, each one of a 2 s GOP), since key frames are the costly ones to decode.

- a second decoder decodes only the scanned key frames, and compares each with the one before
  on a small grey image (search_party.motion, the background being the previous one);
- span *i* (scanned key frame *i* up to *i+1*) is **active** when key frame *i* or *i+1* differs
  from the one before it: something arrived, left or moved during it;
- the last span, which no key frame follows, counts as active;
- an active span is decoded in full by the main decoder (its frames go on to sampling, the
  motion test and the detector as before); of a quiet span only its key frame is passed on, so
  the detector still looks at least every ``max_gap_seconds`` (an animal lying still).

What it guarantees: an animal in view across at least one scanned key frame changes that key
frame (or the next), so its spans are decoded in full; with scanned key frames at most
``max_gap_seconds`` apart, that is every animal in view for that long (the pipeline's own
promise).  One that crosses the whole view between two scanned key frames without touching
either is not looked at; so ``gate_applies`` uses the gate only for clips whose key frames are
close enough, with no B-frames (decode order = display order), and not for all-key-frame
codecs, where it gains nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import av

from search_party.ingest.video.decode import ClipInfo, TimedFrame, _damaged, _open
from search_party.motion import MotionDetector, small_grey

# Below this many seconds between key frames the gate skips too little to pay for decoding each
# key frame twice in active GOPs (and MJPEG is all key frames).
MIN_KEYFRAME_GAP = 0.5
MIN_KEYFRAMES = 3
KEY_THREADS = 2
GATE_SLACK_SECONDS = 0.05  # camera GOPs are 1 s or 2 s give or take a frame's timestamp rounding


def gate_applies(info: ClipInfo, max_gap_seconds: float) -> bool:
    """Is this clip laid out so that gating keeps the pipeline's promise and saves work?"""
    gops = info.gops
    return (not gops.reordered and gops.keyframes >= MIN_KEYFRAMES
            and MIN_KEYFRAME_GAP <= gops.longest_gap <= max_gap_seconds + GATE_SLACK_SECONDS)


@dataclass
class GateCounts:
    gops: int = 0  # spans between scanned key frames (one GOP each with GOPs of max_gap_seconds)
    active: int = 0


def _decoder(stream: av.VideoStream, threads: int, kind: str = "AUTO") -> av.VideoCodecContext:
    context: av.VideoCodecContext = av.CodecContext.create(stream.codec_context.codec.name, "r")  # type: ignore[assignment]
    context.extradata = stream.codec_context.extradata
    context.thread_type = kind
    context.thread_count = threads
    return context


def scan_stride(info: ClipInfo, max_gap_seconds: float) -> int:
    """Every how many key frames one is scanned: as few as keep scanned key frames at most
    ``max_gap_seconds`` apart (every other one for a 1 s GOP, each one for a 2 s GOP)."""
    return max(1, int((max_gap_seconds + GATE_SLACK_SECONDS) // info.gops.longest_gap))


def decode_gated(info: ClipInfo, *, motion_threshold: float, motion_width: int, max_gap_seconds: float,
                 threads: int = 0, counts: GateCounts | None = None) -> Generator[TimedFrame, None, None]:
    """The frames of a probed clip worth looking at, in display order, timed from their PTS:
    every frame of each active span, the key frame of each quiet one."""
    counts = counts if counts is not None else GateCounts()
    stride = scan_stride(info, max_gap_seconds)
    keyframes = 0
    with _open(info.path) as container:
        stream = container.streams.video[0]
        tick = stream.time_base
        assert tick is not None, "FFmpeg gives every stream a time base"
        # Key frames are decoded while the detector mostly idles (quiet stretches), and camera
        # HEVC is coded in wavefronts that FFmpeg's slice threads decode in parallel.
        keys = _decoder(stream, KEY_THREADS, "SLICE")
        dense = _decoder(stream, threads)
        scene = MotionDetector(motion_threshold, background_rate=1.0)
        base = stream.start_time

        def seconds(frame: av.VideoFrame) -> float:
            return max(0.0, float((frame.pts - (base or 0)) * tick)) if frame.pts is not None else 0.0

        def key_frame(packet: av.Packet) -> tuple[av.VideoFrame | None, bool]:
            frames = keys.decode(packet) + keys.decode(None)  # drained: the next key frame starts afresh
            keys.flush_buffers()
            if not frames:
                return None, True  # undecodable key frame: decode its GOP in full rather than guess
            return frames[0], scene.update(small_grey(frames[0], motion_width))

        # (packets of the span, its key frame decoded, whether it differed from the key frame before)
        current: tuple[list[av.Packet], av.VideoFrame | None, bool] | None = None
        dense_open = False
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is not None and base is None:
                    base = packet.pts
                scanned = packet.is_keyframe and keyframes % stride == 0
                keyframes += packet.is_keyframe
                if scanned:
                    frame, moved = key_frame(packet)
                    if current is not None:
                        active = current[2] or moved
                        dense_open = yield from _emit(current, active, dense, dense_open, seconds, counts)
                    first = current is None
                    # The clip's first key frame has nothing before it: it alone makes no GOP active.
                    current = ([packet], frame, moved and not first)
                elif current is not None:
                    current[0].append(packet)
            if current is not None:  # no key frame after it tells whether it was quiet: decode it
                dense_open = yield from _emit(current, True, dense, dense_open, seconds, counts)
            if dense_open:
                for frame in dense.decode(None):
                    yield TimedFrame(seconds(frame), frame)
        except (av.error.FFmpegError, OSError) as exc:
            raise _damaged(info.path.name, exc) from None


def _emit(gop: tuple[list[av.Packet], av.VideoFrame | None, bool], active: bool, dense: av.VideoCodecContext,
          dense_open: bool, seconds: Callable[[av.VideoFrame], float],
          counts: GateCounts) -> Generator[TimedFrame, None, bool]:
    """Pass on one GOP; returns whether the dense decoder is mid-stream afterwards."""
    packets, key, _ = gop
    counts.gops += 1
    if active:
        counts.active += 1
        for packet in packets:
            for frame in dense.decode(packet):
                yield TimedFrame(seconds(frame), frame)
        return True
    if dense_open:  # the run of active GOPs ended: drain the decoder's delayed frames first
        for frame in dense.decode(None):
            yield TimedFrame(seconds(frame), frame)
        dense.flush_buffers()
    if key is not None:
        yield TimedFrame(seconds(key), key)
    return False
