"""What real outdoor cameras do to a picture of a dog, as reproducible image transforms.

A dog's photo on its owner's phone is sharp, in colour and close; the same dog on a neighbour's
camera is often grey infrared at night with sensor noise, a few dozen pixels tall, smeared by
motion, blocky from H.264, or seen from above through a wide lens.  These transforms make such
pictures from real crops, for two uses:

- ``search-party eval reid --degrade KIND`` scores re-ID on degraded copies of real images
  (one fixed, seeded degradation per image), beside the clean figure;
- training draws them at random (``random_effects``) so the model learns to see through them.

Pure numpy and Pillow: no torch, so evaluation runs on a production install.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

DEGRADATIONS = ("ir", "lowres", "blur", "jpeg", "overhead")


def infrared(rgb: np.ndarray, rng: np.random.Generator,
             grain: np.random.Generator | None = None) -> np.ndarray:
    """Night infrared: grey (IR cameras record luminance only), flattened contrast with a bright
    centre (the IR illuminator), and grainy sensor noise.  ``grain`` draws the noise itself (default
    ``rng``): successive frames of one camera share its look but not its grain."""
    grey = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w]
    falloff = 1.0 - 0.35 * (((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2) * 4
    contrast = rng.uniform(0.55, 0.85)
    grey = (128 + (grey - grey.mean()) * contrast) * falloff + rng.uniform(-15, 25)
    sigma = rng.uniform(4, 12)
    grey += (grain or rng).normal(0, sigma, grey.shape)
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def low_resolution(rgb: np.ndarray, rng: np.random.Generator, sides: tuple[int, int] = (24, 96)) -> np.ndarray:
    """A dog far from the camera: shrunk so its longer side is 24-96 px, as the detector's crop
    of a small dog is, then handed on at that size (the embedder stretches it back up)."""
    h, w = rgb.shape[:2]
    side = int(rng.integers(sides[0], sides[1] + 1))
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    small = (max(8, round(w * scale)), max(8, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(small, Image.Resampling.BILINEAR, reducing_gap=2.0))


def motion_blur(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dog trotting past at a slow shutter: a straight smear 4-12 % of the crop long, in a random
    direction (a line kernel applied by shifting and averaging)."""
    h, w = rgb.shape[:2]
    length = max(2, round(max(h, w) * rng.uniform(0.04, 0.12)))
    angle = rng.uniform(0, math.pi)
    acc = np.zeros(rgb.shape, dtype=np.float32)
    for t in np.linspace(-0.5, 0.5, length):
        dx, dy = round(t * length * math.cos(angle)), round(t * length * math.sin(angle))
        acc += np.roll(rgb, (dy, dx), axis=(0, 1))
    return np.clip(acc / length, 0, 255).astype(np.uint8)


def compression(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blocky, smeared colour from a camera's low bit rate (JPEG at quality 8-30 stands in for
    H.264's blocks and chroma subsampling)."""
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=int(rng.integers(8, 31)), subsampling=2)
    return np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB"))


def overhead(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A doorbell or wide-angle camera above the dog: a keystone squeeze (top-down perspective)
    and barrel distortion, then a slight softening where the lens is worst."""
    img = Image.fromarray(rgb)
    w, h = img.size
    squeeze = rng.uniform(0.1, 0.3) * w
    # Perspective: the top edge narrower than the bottom, as seen from above.
    coeffs = _perspective_coeffs([(squeeze, 0), (w - squeeze, 0), (w, h), (0, h)],
                                 [(0, 0), (w, 0), (w, h), (0, h)])
    img = img.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    arr = np.asarray(img)
    k = rng.uniform(0.1, 0.3)  # barrel strength
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    nx, ny = (xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)
    factor = 1 + k * (nx ** 2 + ny ** 2)
    sx = np.clip((nx / factor) * (w / 2) + w / 2, 0, w - 1).astype(np.int32)
    sy = np.clip((ny / factor) * (h / 2) + h / 2, 0, h - 1).astype(np.int32)
    warped = Image.fromarray(arr[sy, sx])
    return np.asarray(warped.filter(ImageFilter.GaussianBlur(0.6)))


def _perspective_coeffs(source: list[tuple[float, float]], target: list[tuple[float, float]]) -> list[float]:
    """Pillow's 8 perspective coefficients mapping ``target`` corners to ``source`` corners."""
    rows = []
    for (x, y), (u, v) in zip(target, source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=np.float64)
    b = np.array([c for point in source for c in point], dtype=np.float64)
    return list(np.linalg.solve(a, b))


_EFFECTS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "ir": infrared, "lowres": low_resolution, "blur": motion_blur, "jpeg": compression, "overhead": overhead,
}


def degrade(rgb: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` (H×W×3 uint8) as the camera effect ``kind`` (one of DEGRADATIONS) would show it."""
    if kind not in _EFFECTS:
        raise ValueError(f"unknown degradation {kind!r}; choose one of {', '.join(DEGRADATIONS)}")
    return _EFFECTS[kind](rgb, rng)


def random_effects(rgb: np.ndarray, rng: np.random.Generator, shares: dict[str, float]) -> np.ndarray:
    """Training augmentation: each effect applied with its probability in ``shares`` (overhead
    first, compression last, as light meets lens, then sensor, then encoder)."""
    for kind in ("overhead", "blur", "lowres", "ir", "jpeg"):
        if rng.random() < shares.get(kind, 0.0):
            rgb = degrade(rgb, kind, rng)
    return rgb
