"""Ingest's second look: where the motion test saw something move and the detector's look at the
whole frame found no animal, look again, closer, at the largest moving regions
(embeddings.closer_look).  Small and far dogs, which the whole-frame look misses, are found there.

The motion mask is the small grey frame's (search_party.motion), taken before the frame was turned
upright; it is turned the same way here and scaled to the frame's pixels.
"""

from __future__ import annotations

import numpy as np

from embeddings.closer_look import look_closer
from embeddings.detector import Box, Detection, PetDetector
from search_party.motion import changed_regions


def motion_boxes(changed: np.ndarray, rotation: int, width: int, height: int,
                 limit: int) -> list[Box]:
    """The ``limit`` largest moving regions of a changed-pixel mask, in pixels of the upright
    ``width``×``height`` frame."""
    mask = np.rot90(changed, rotation // 90) if rotation else changed
    sx, sy = width / mask.shape[1], height / mask.shape[0]
    return [(x1 * sx, y1 * sy, x2 * sx, y2 * sy) for x1, y1, x2, y2 in changed_regions(mask, limit)]


def second_look(detector: PetDetector, rgb: np.ndarray, changed: np.ndarray | None, rotation: int,
                limit: int) -> tuple[list[Detection], list[Box]]:
    """Pets and persons found by looking closer at where ``changed`` says the frame moved
    (nothing when it says nothing, e.g. the clip's first frame)."""
    if changed is None:
        return [], []
    height, width = rgb.shape[:2]
    regions = motion_boxes(changed, rotation, width, height, limit)
    return look_closer(detector, rgb, regions) if regions else ([], [])
