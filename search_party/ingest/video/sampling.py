"""Which decoded frames to look at, and which of those the detector must see.

Every decision uses each frame's own time, never its index, so a variable-frame-rate clip (phones
drop to a few frames a second in the dark) is sampled evenly in time.

The motion test runs on ``sample_fps`` frames a second; the detector, the costly part, runs on:
- the first frame that moves after a still spell (a new arrival is looked at at once),
- moving frames at most ``detect_fps`` times a second while the motion goes on,
- any frame when the detector has not run for ``max_gap_seconds`` (an animal the motion test
  missed: low contrast, or lying still).
"""

from __future__ import annotations

_EPS = 1e-6


class FrameSampler:
    def __init__(self, sample_fps: float, detect_fps: float, max_gap_seconds: float) -> None:
        for name, value in (("sample_fps", sample_fps), ("detect_fps", detect_fps),
                            ("max_gap_seconds", max_gap_seconds)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        self.period = 1.0 / sample_fps
        self.detect_period = 1.0 / detect_fps
        self.max_gap = max_gap_seconds
        self._next_sample = 0.0
        self._last_detection: float | None = None
        self._was_moving = False

    def take(self, t: float) -> bool:
        """Is the frame at ``t`` seconds one of the ``sample_fps`` frames a second?"""
        if t + _EPS < self._next_sample:
            return False
        # Keep to the grid of sample times; after a gap in the clip, restart the grid at t.
        self._next_sample += self.period
        if self._next_sample <= t:
            self._next_sample = t + self.period
        return True

    def wants_detector(self, t: float, moved: bool) -> bool:
        """Should the detector see the sampled frame at ``t``?  A yes counts as a detector run."""
        last = self._last_detection
        onset = moved and not self._was_moving
        self._was_moving = moved
        run = (
            last is None
            or onset
            or t - last >= self.max_gap - _EPS
            or (moved and t - last >= self.detect_period - _EPS)
        )
        if run:
            self._last_detection = t
        return run
