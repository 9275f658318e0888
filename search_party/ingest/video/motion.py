"""A cheap test for "did anything move?" on small greyscale frames, run before the detector.

Each frame is compared with a running average of the frames before it (so a dog that walks in and
sits down stops counting as motion after a few samples, and a slow one still adds up).  A change
of brightness across the whole frame (clouds, a camera's auto-exposure) is divided out first, so
only local change counts.
"""

from __future__ import annotations

import numpy as np

# A pixel has changed when it differs from the background by more than this (0–255 scale);
# well above the noise left after the area-averaging shrink, well below a dog against grass.
PIXEL_DELTA = 18.0
# How fast the background follows the scene, per sampled frame.
BACKGROUND_RATE = 0.5


class MotionDetector:
    """``update(grey)`` returns True when more than ``threshold`` of the pixels changed."""

    def __init__(self, threshold: float, pixel_delta: float = PIXEL_DELTA,
                 background_rate: float = BACKGROUND_RATE) -> None:
        self.threshold = threshold
        self.pixel_delta = pixel_delta
        self.background_rate = background_rate
        self._background: np.ndarray | None = None
        self.last_fraction = 0.0

    def update(self, grey: np.ndarray) -> bool:
        """Compare ``grey`` (H×W uint8) with the background, then fold it in.  The first frame,
        and any frame whose size differs from the background, counts as motion."""
        frame = grey.astype(np.float32)
        background = self._background
        if background is None or background.shape != frame.shape:
            self._background = frame
            self.last_fraction = 1.0
            return True
        # A change of exposure scales every pixel alike: undo it before comparing.
        gain = float(background.mean()) / max(float(frame.mean()), 1.0)
        diff = frame * gain - background
        self.last_fraction = float(np.mean(np.abs(diff) > self.pixel_delta))
        background += self.background_rate * (frame - background)
        return self.last_fraction > self.threshold
