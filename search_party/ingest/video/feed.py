"""Which frames reach the detector: decode → sample → motion test, in a thread of its own.
For camera clips laid out for it, decoding itself is gated on the key frames
(search_party.ingest.video.keyframe_gate): quiet stretches are never decoded in full.

FFmpeg's decoding, its scaler and onnxruntime all release the GIL, so while the detector works
on one frame this thread is already decoding the next ones: on two cores the decoder fills the
gaps the detector's threads leave.  Only sampled frames cross over, through a short queue, and
only those the detector must see carry their pixels, already prepared for it (``prepare``: in
ingest, converted to RGB and shrunk to the detector's input) so that the detector's thread, the
busier of the two, spends its time in the detector.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import av

from search_party.ingest.stage_timer import StageTimer
from search_party.ingest.video.decode import ClipError, ClipInfo, TimedFrame, decode_frames
from search_party.ingest.video.keyframe_gate import GateCounts, decode_gated, gate_applies
from search_party.ingest.video.sampling import FrameSampler
from search_party.motion import MotionDetector, small_grey

# More corrupt frames than this fraction and the clip is refused rather than half-read.
MAX_CORRUPT_FRACTION = 0.5
QUEUE_FRAMES = 8  # enough to ride out one slow detector call; bounded so memory is too


@dataclass
class FeedItem:
    """A sampled frame's time; ``look`` is set when the detector must look at it
    (``FrameSampler.wants_detector``): what ``prepare`` made of the frame for it, with the
    motion test's changed pixels (``MotionDetector.last_changed``) for a second look."""

    seconds: float
    look: Any = None
    changed: Any = None


@dataclass
class FeedCounts:
    decoded: int = 0
    corrupt: int = 0
    motion_checked: int = 0
    detected: int = 0


class FrameFeed:
    """Iterate to get the sampled frames of a probed clip, in order; errors in the decoding
    thread (a ClipError for a damaged file) are raised in the iterating one."""

    def __init__(self, info: ClipInfo, *, sample_fps: float, detect_fps: float,
                 max_gap_seconds: float, motion_threshold: float, motion_width: int,
                 skip_nonref: bool, prepare: Callable[[av.VideoFrame], Any],
                 decode_threads: int = 0, keyframe_gate: bool = False) -> None:
        self.info = info
        self.prepare = prepare
        self.sampler = FrameSampler(sample_fps, detect_fps, max_gap_seconds)
        self.motion = MotionDetector(motion_threshold)
        self.motion_width = motion_width
        self.skip_nonref = skip_nonref
        self.decode_threads = decode_threads
        # Gated: decode in full only the GOPs whose key frames changed (keyframe_gate).
        self.gated = keyframe_gate and gate_applies(info, max_gap_seconds)
        self.max_gap_seconds = max_gap_seconds
        self.gate_counts = GateCounts()
        self.counts = FeedCounts()
        self.timer = StageTimer()  # its own: the consuming thread times its stages apart
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._stop = threading.Event()
        self._end = object()

    def __iter__(self) -> Iterator[FeedItem]:
        thread = threading.Thread(target=self._produce, name="frame-feed", daemon=True)
        thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is self._end:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()  # the consumer stopped (done, or an error): let the thread finish
            thread.join()

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _produce(self) -> None:
        try:
            frames = (decode_gated(self.info, motion_threshold=self.motion.threshold,
                                   motion_width=self.motion_width, max_gap_seconds=self.max_gap_seconds,
                                   threads=self.decode_threads, counts=self.gate_counts) if self.gated
                      else decode_frames(self.info, skip_nonref=self.skip_nonref, threads=self.decode_threads))
            try:
                self._pump(frames)
            finally:
                frames.close()
            self._check_corruption()
            self._put(self._end)
        except BaseException as exc:  # raised again in the consuming thread
            self._put(exc)

    def _pump(self, frames: Iterator[TimedFrame]) -> None:
        counts = self.counts
        while not self._stop.is_set():
            with self.timer("decode"):
                timed = next(frames, None)
            if timed is None:
                return
            counts.decoded += 1
            if timed.frame.is_corrupt:  # concealed garbage: never shown to the detector
                counts.corrupt += 1
                continue
            if not self.sampler.take(timed.seconds):
                continue
            counts.motion_checked += 1
            with self.timer("motion"):
                moved = self.motion.update(small_grey(timed.frame, self.motion_width))
            look = self.sampler.wants_detector(timed.seconds, moved)
            counts.detected += look
            if not look:
                self._put(FeedItem(timed.seconds))
                continue
            with self.timer("prepare"):
                prepared = self.prepare(timed.frame)
            self._put(FeedItem(timed.seconds, prepared, self.motion.last_changed))

    def _check_corruption(self) -> None:
        counts = self.counts
        if counts.decoded and counts.corrupt > MAX_CORRUPT_FRACTION * counts.decoded:
            raise ClipError(
                f"{self.info.path.name} is damaged: {counts.corrupt} of its {counts.decoded} "
                "frames could not be decoded cleanly; send the clip again"
            )
