"""Images as users send them: phone photos, odd modes, HEIC, truncated files, pixel bombs.

Everything the models see passes through ``load_image``: EXIF orientation applied, converted to
8-bit RGB, and refused with an ``ImageError`` (a plain sentence a user can act on) when it is not
a usable picture.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from embeddings.errors import ImageError

try:  # HEIC/HEIF from iPhones; registered as a Pillow plugin.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a hard dependency, this is belt and braces
    pass

# 40 megapixels covers every phone camera; beyond that we refuse before decoding.
MAX_PIXELS = 40_000_000
MIN_SIDE = 16

ImageSource = str | Path | bytes | BinaryIO


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, bytes):
        return Image.open(io.BytesIO(source))
    return Image.open(source)


def _describe(source: ImageSource) -> str:
    return Path(source).name if isinstance(source, (str, Path)) else "the uploaded file"


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale the real range to 8 bits instead of clipping to white.
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) or 1.0
        img = Image.fromarray(np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        img = Image.fromarray(((arr - lo) / ((hi - lo) or 1.0) * 255.0).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, not black, so a cut-out dog keeps its outline.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(source: ImageSource, max_pixels: int | None = None) -> Image.Image:
    """Open, verify and normalise a picture to upright 8-bit RGB.

    Raises ImageError for anything that is not a whole, reasonably sized image.
    """
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    name = _describe(source)
    try:
        with warnings.catch_warnings():
            # Pillow warns, then raises, on decompression bombs; we check the size ourselves first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = _open(source)
            width, height = img.size
            if width * height > limit:
                raise ImageError(
                    f"{name} is {width}×{height} pixels, more than the {limit // 1_000_000} megapixel "
                    "limit; send a smaller photo"
                )
            if min(width, height) < MIN_SIDE:
                raise ImageError(f"{name} is only {width}×{height} pixels; send a larger photo")
            img.load()  # decode now so truncation is found here, not later
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name} is a folder, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image we can read (JPEG, PNG, HEIC, WebP …)") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"{name} has more than the {limit // 1_000_000} megapixel limit; send a smaller photo"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError/ValueError.
        raise ImageError(f"{name} is damaged or incomplete ({exc}); send the photo again") from None


def load_rgb(source: ImageSource, max_pixels: int | None = None) -> np.ndarray:
    """``load_image`` as an H×W×3 uint8 array."""
    return np.asarray(load_image(source, max_pixels))
