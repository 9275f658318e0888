"""Blur person regions out of any image that is stored or shown, and keep nothing but pixels.

Each region is padded (detector boxes often cut off hair, hands or a shoulder), pixelated to a
few coarse cells so no face detail survives, then Gaussian-blurred so the cell edges do not
leave a mosaic that could be sharpened back.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from embeddings import boxes as bx

Box = tuple[float, float, float, float]
THUMBNAIL_SIDE = 320
THUMBNAIL_QUALITY = 85


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
        coarse = region.resize((math.ceil(w / block), math.ceil(h / block)), Image.Resampling.BOX)
        smooth = coarse.resize((w, h), Image.Resampling.NEAREST).filter(ImageFilter.GaussianBlur(block / 2))
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


def blurred_frame(rgb: np.ndarray, person_boxes: Sequence[Box]) -> np.ndarray:
    """``rgb`` with every person region blurred (``rgb`` itself when there is none)."""
    return blur_regions(rgb, person_boxes) if person_boxes else rgb


def thumbnail_jpeg(rgb: np.ndarray, person_boxes: Sequence[Box]) -> bytes:
    """``rgb`` with every person region blurred, at most THUMBNAIL_SIDE pixels, as a JPEG with no
    EXIF: only pixels leave, never a camera's metadata.  (Ingest blurs whole frames before
    cutting crops, so a person cut off at the crop's edge is blurred too, and passes [] here.)"""
    img = Image.fromarray(blurred_frame(rgb, person_boxes))
    img.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()
