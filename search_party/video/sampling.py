"""Which decoded frames to look at: a steady rate by timestamp, and never too long without the detector.

Both decisions use each frame's own time, never its index, so a variable-frame-rate clip (phones
drop to a few frames a second in the dark) is sampled evenly in time.
"""

from __future__ import annotations


class FrameSampler:
    """``take(t)``: is the frame at ``t`` seconds one of the ``sample_fps`` frames per second?
    ``detector_due(t)``: has the detector gone ``max_gap_seconds`` without running?"""

    def __init__(self, sample_fps: float, max_gap_seconds: float) -> None:
        if sample_fps <= 0:
            raise ValueError(f"sample_fps must be positive, not {sample_fps}")
        if max_gap_seconds <= 0:
            raise ValueError(f"max_gap_seconds must be positive, not {max_gap_seconds}")
        self.period = 1.0 / sample_fps
        self.max_gap = max_gap_seconds
        self._next_sample = 0.0
        self._last_detection: float | None = None

    def take(self, t: float) -> bool:
        if t + 1e-6 < self._next_sample:
            return False
        # Keep to the grid of sample times; after a gap in the clip, restart the grid at t.
        self._next_sample += self.period
        if self._next_sample <= t:
            self._next_sample = t + self.period
        return True

    def detector_due(self, t: float) -> bool:
        return self._last_detection is None or t - self._last_detection >= self.max_gap - 1e-6

    def detector_ran(self, t: float) -> None:
        self._last_detection = t
