"""Blur person regions out of any image that is stored or shown.

Each region is padded (detector boxes often cut off hair, hands or a shoulder), pixelated to a
few coarse cells so no face detail survives, then Gaussian-blurred so the cell edges do not
leave a mosaic that could be sharpened back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from embeddings import boxes as bx


def blur_regions(
    rgb: np.ndarray,
    boxes: Iterable[Sequence[float]],
    pad: float = 0.1,
    cells: int = 8,
) -> np.ndarray:
    """A new H×W×3 uint8 array with every (x1, y1, x2, y2) box strongly blurred.

    ``pad`` grows each box by that fraction of its size on every side; ``cells`` is how many
    pixel blocks span the region's shorter side before the Gaussian blur.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 RGB array, got {rgb.dtype} {rgb.shape}")
    out = rgb.copy()
    regions = np.asarray(list(boxes), dtype=np.float64).reshape(-1, 4)
    if not len(regions):
        return out
    height, width = rgb.shape[:2]
    for x1, y1, x2, y2 in bx.pad(regions, pad, width, height):
        # Round outward so no edge pixel of the region escapes.
        left, top = int(math.floor(x1)), int(math.floor(y1))
        right, bottom = int(math.ceil(x2)), int(math.ceil(y2))
        w, h = right - left, bottom - top
        if w <= 0 or h <= 0:
            continue
        block = max(1, math.ceil(min(w, h) / cells))
        region = Image.fromarray(out[top:bottom, left:right])
        coarse = region.resize((math.ceil(w / block), math.ceil(h / block)), Image.BOX)
        smooth = coarse.resize((w, h), Image.NEAREST).filter(ImageFilter.GaussianBlur(block / 2))
        out[top:bottom, left:right] = np.asarray(smooth)
    return out


def blur_beside(rgb: np.ndarray, person_boxes: Iterable[Sequence[float]],
                keep: Sequence[float]) -> np.ndarray:
    """``rgb`` with every person region blurred except inside the pet box ``keep``.

    Used before a pet is cropped for embedding: people beside the pet (in the crop's margin)
    never reach the embedder, while a dog held in someone's arms stays a sharp dog.
    """
    out = blur_regions(rgb, person_boxes)
    height, width = rgb.shape[:2]
    left, top = max(0, int(math.floor(keep[0]))), max(0, int(math.floor(keep[1])))
    right, bottom = min(width, int(math.ceil(keep[2]))), min(height, int(math.ceil(keep[3])))
    out[top:bottom, left:right] = rgb[top:bottom, left:right]
    return out
