"""A second, closer look: the detector run again on a square window of the frame around a region
where something moved, the window scaled up (or down) to the detector's input.

The detector sees a whole 720p frame shrunk to 416 px: a dog 40 px tall becomes two dozen pixels,
squeezed sideways to a third by PicoDet's square stretch, too few for it.  A window of 208 px
around the motion shows the same dog twice its size, undistorted.  Boxes found in the window, pets
and persons alike, are handed back in the frame's pixels so that persons are blurred in the frame
before anything is cropped from it (embeddings.redact).
"""

from __future__ import annotations

import numpy as np

from embeddings.detector import Box, Detection, PetDetector

# The window is the region grown by this factor (context around a moving animal helps the
# detector), at least the detector's input divided by MAX_ZOOM (upscaling further only blurs).
# Chosen on the calibrate split's dogs (`bench vision --split calibrate`): MAX_ZOOM 3 found 101
# of 168 dogs across the four conditions against 94 at 2, but at 3 the night-IR yard still
# (tests/fixtures/images/frigate_ir) gives a "dog" on a crouching person; CONTEXT 2 found 82.
CONTEXT = 1.5
MAX_ZOOM = 2.0
# A closer look is worth running only if it shows the region at least this many times larger
# than the look at the whole frame did.
MIN_GAIN = 1.5
# The window is CONTEXT× the motion it was opened for, so what moved fills well under half of it;
# a box covering most of the window is the detector reading texture blown up, not an animal (on
# real night-IR yard footage, snow and bowls upscaled came out as a "cat" filling the window).
MAX_FILL = 0.6


def window(region: Box, width: int, height: int, input_side: int) -> tuple[int, int, int]:
    """(x0, y0, side): the square window around ``region`` (frame pixels), inside the frame."""
    x1, y1, x2, y2 = region
    side = max(x2 - x1, y2 - y1) * CONTEXT, input_side / MAX_ZOOM
    s = int(round(min(max(side), width, height)))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    x0 = int(round(min(max(cx - s / 2, 0), width - s)))
    y0 = int(round(min(max(cy - s / 2, 0), height - s)))
    return x0, y0, s


def gain(detector: PetDetector, width: int, height: int, side: int) -> float:
    """How many times larger a window of ``side`` px shows things than the whole frame did
    (the frame's smaller shrink factor, which is the one that loses a small dog)."""
    in_w, in_h = detector.input_size(width, height)
    whole = min(in_w / width, in_h / height)
    closer = max(detector.input_size(side, side)) / side
    return closer / whole


def look_closer(detector: PetDetector, rgb: np.ndarray,
                regions: list[Box]) -> tuple[list[Detection], list[Box]]:
    """Pets and persons the detector finds in windows around ``regions`` of an H×W×3 RGB frame,
    in frame pixels.  Windows that would not show the region at least MIN_GAIN× larger are
    skipped, as is a window already covered by one looked at for an earlier region."""
    height, width = rgb.shape[:2]
    side_in = max(detector.input_size(width, height))
    pets: list[Detection] = []
    persons: list[Box] = []
    looked: list[tuple[int, int, int]] = []
    for region in regions:
        x0, y0, s = window(region, width, height, side_in)
        if gain(detector, width, height, s) < MIN_GAIN:
            continue
        if any(_inside(region, w) for w in looked):
            continue
        looked.append((x0, y0, s))
        crop = rgb[y0:y0 + s, x0:x0 + s]
        pets.extend(Detection(d.label, d.score, _shift(d.box, x0, y0)) for d in detector.predict(crop)
                    if _area(d.box) <= MAX_FILL * s * s)
        persons.extend(_shift(b, x0, y0) for b in detector.person_boxes(crop))  # the same pass
    pets.sort(key=lambda d: -d.score)
    return pets, persons


def _inside(region: Box, win: tuple[int, int, int]) -> bool:
    x0, y0, s = win
    return region[0] >= x0 and region[1] >= y0 and region[2] <= x0 + s and region[3] <= y0 + s


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _shift(box: Box, dx: int, dy: int) -> Box:
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)
