"""A cheap test for "did anything move?" on small greyscale frames: ingest runs it before the
detector, and the RTSP camera agent (search_party.agent.rtsp) on the neighbour's machine to decide
which moments to send at all.  Plain numpy and PyAV frames, so both sides share one copy.

Each frame is compared with a running average of the frames before it (so a dog that walks in and
sits down stops counting as motion after a few samples, and a slow one still adds up).  A change
of brightness across the whole frame (clouds, a camera's auto-exposure) is divided out first, so
only local change counts.

``changed_regions`` turns the last comparison's changed pixels into a few boxes, so ingest can take
a second, closer look at where something moved when the detector's look at the whole frame found
no animal (search_party.ingest.second_look).
"""

from __future__ import annotations

import av
import numpy as np

# 8-bit pixel formats whose first plane is the luma (grey) picture, one byte a pixel.
_EIGHT_BIT_LUMA_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                         "nv12", "nv21", "gray"}
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
        # Which pixels of the last frame changed; None when it had nothing to compare with.
        self.last_changed: np.ndarray | None = None

    def update(self, grey: np.ndarray) -> bool:
        """Compare ``grey`` (H×W uint8) with the background, then fold it in.  The first frame,
        and any frame whose size differs from the background, counts as motion."""
        frame = grey.astype(np.float32)
        background = self._background
        if background is None or background.shape != frame.shape:
            self._background = frame
            self.last_fraction = 1.0
            self.last_changed = None
            return True
        # A change of exposure scales every pixel alike: undo it before comparing.
        gain = float(background.mean()) / max(float(frame.mean()), 1.0)
        diff = frame * gain - background
        self.last_changed = np.abs(diff) > self.pixel_delta
        self.last_fraction = float(np.mean(self.last_changed))
        background += self.background_rate * (frame - background)
        return self.last_fraction > self.threshold


def small_grey(frame: av.VideoFrame, width: int) -> np.ndarray:
    """The frame shrunk to about ``width`` pixels wide (between width and 2×width) in 8-bit grey,
    each pixel the mean of 2×2 samples (which halves sensor noise).  Rotation does not matter for
    telling whether anything moved.

    Camera codecs decode to 8-bit YUV, whose first plane already is the grey picture: reading it
    strided costs a few microseconds, against half a millisecond for FFmpeg's scaler, which is
    used only for other pixel formats (10-bit, RGB).
    """
    if frame.format.name not in _EIGHT_BIT_LUMA_FIRST:
        height = max(2, round(frame.height * width / frame.width))
        return frame.reformat(width=width, height=height, format="gray",
                              interpolation="AREA").to_ndarray()
    plane = frame.planes[0]
    luma = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    step = max(1, frame.width // (2 * width))
    samples = luma[:frame.height:step, :frame.width:step]
    h, w = samples.shape[0] // 2 * 2, samples.shape[1] // 2 * 2
    s = samples[:h, :w].astype(np.uint16)
    return ((s[0::2, 0::2] + s[0::2, 1::2] + s[1::2, 0::2] + s[1::2, 1::2]) >> 2).astype(np.uint8)


# changed_regions works on cells of CELL×CELL small-grey pixels; a cell counts when at least
# CELL_MIN of its pixels changed, so lone noisy pixels (IR grain) never make a region.
CELL = 4
CELL_MIN = 2


def changed_regions(changed: np.ndarray, limit: int) -> list[tuple[int, int, int, int]]:
    """The ``limit`` largest groups of changed cells (8-connected) in a changed-pixel mask, each as
    (x1, y1, x2, y2) in the mask's pixels, largest first."""
    h, w = changed.shape
    gh, gw = -(-h // CELL), -(-w // CELL)
    padded = np.zeros((gh * CELL, gw * CELL), bool)
    padded[:h, :w] = changed
    active = padded.reshape(gh, CELL, gw, CELL).sum(axis=(1, 3)) >= CELL_MIN
    seen = np.zeros_like(active)
    groups: list[tuple[int, tuple[int, int, int, int]]] = []
    for start in zip(*np.nonzero(active)):
        if seen[start]:
            continue
        seen[start] = True
        stack, cells = [start], 0
        y1, x1, y2, x2 = start[0], start[1], start[0], start[1]
        while stack:  # a flood fill: the grid is a few hundred cells, python is fast enough
            y, x = stack.pop()
            cells += 1
            y1, x1, y2, x2 = min(y1, y), min(x1, x), max(y2, y), max(x2, x)
            for ny in range(max(0, y - 1), min(gh, y + 2)):
                for nx in range(max(0, x - 1), min(gw, x + 2)):
                    if active[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        box = (x1 * CELL, y1 * CELL, min(w, (x2 + 1) * CELL), min(h, (y2 + 1) * CELL))
        groups.append((cells, box))
    groups.sort(key=lambda g: -g[0])
    return [box for _, box in groups[:limit]]
