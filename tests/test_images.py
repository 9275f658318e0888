"""Images as users send them, built from the real fixture dog photo."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embeddings.errors import ImageError
from embeddings.images import load_image, load_rgb

DOG = "images/zamba_dog_porch.jpg"  # 768×576 landscape


@pytest.fixture
def dog(fixtures: Path) -> Image.Image:
    return Image.open(fixtures / DOG).convert("RGB")


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _with_orientation(img: Image.Image, fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encoded(img, fmt, exif=exif.tobytes())


def test_plain_jpeg_loads_as_rgb(fixtures: Path) -> None:
    arr = load_rgb(fixtures / DOG)
    assert arr.shape == (576, 768, 3) and arr.dtype == np.uint8


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF"])
def test_exif_rotation_is_applied(dog: Image.Image, fmt: str) -> None:
    # A phone held upright stores landscape pixels plus "rotate 90° CW" (orientation 6).
    img = load_image(_with_orientation(dog, fmt, 6))
    assert img.size == (576, 768)


def test_iphone_heic_is_accepted(dog: Image.Image) -> None:
    img = load_image(_encoded(dog, "HEIF", quality=80))
    assert img.mode == "RGB" and img.size == dog.size
    # Same picture, not just the same size: compare with the original at low resolution.
    diff = np.abs(np.asarray(img.resize((64, 48)), float) - np.asarray(dog.resize((64, 48)), float))
    assert diff.mean() < 12


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "CMYK", "P", "I;16", "1"])
def test_unusual_modes_become_8bit_rgb(dog: Image.Image, mode: str) -> None:
    if mode == "I;16":
        # 16-bit greyscale PNG: values spread over the full 0..65535 range.
        grey = np.asarray(dog.convert("L"), dtype=np.uint16) * 257
        src = Image.fromarray(grey)
    else:
        src = dog.convert(mode)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    img = load_image(_encoded(src, fmt))
    assert img.mode == "RGB" and img.size == dog.size
    arr = np.asarray(img)
    assert arr.max() > 200 and arr.min() < 60  # real contrast survived the conversion


def test_transparent_background_becomes_white(dog: Image.Image) -> None:
    rgba = dog.convert("RGBA")
    alpha = np.zeros((rgba.height, rgba.width), np.uint8)
    alpha[100:300, 100:300] = 255
    rgba.putalpha(Image.fromarray(alpha))
    arr = load_rgb(_encoded(rgba, "PNG"))
    assert (arr[0:50, 0:50] == 255).all()


def test_truncated_jpeg_is_refused(fixtures: Path) -> None:
    # Tried: the real dog JPEG cut to half its bytes, as an interrupted upload would leave it.
    data = (fixtures / DOG).read_bytes()
    with pytest.raises(ImageError, match="damaged or incomplete"):
        load_image(data[: len(data) // 2])


def test_text_file_is_refused(tmp_path: Path) -> None:
    # Tried: a text file renamed to .jpg.
    fake = tmp_path / "dog.jpg"
    fake.write_text("this is not a photo of a dog\n")
    with pytest.raises(ImageError, match="not an image"):
        load_image(fake)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    # Tried: a zero-byte upload.
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError):
        load_image(empty)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


def test_pixel_bomb_is_refused_before_decoding() -> None:
    # Tried: a tiny PNG (a few kB) that declares 20000×20000 pixels (400 MP) of one colour.
    bomb = _encoded(Image.new("L", (20000, 20000)), "PNG")
    assert len(bomb) < 2_000_000
    with pytest.raises(ImageError, match="megapixel"):
        load_image(bomb)


def test_tiny_image_is_refused(dog: Image.Image) -> None:
    # Tried: a 10×8 thumbnail, too small to hold a recognisable dog.
    with pytest.raises(ImageError, match="larger photo"):
        load_image(_encoded(dog.resize((10, 8)), "PNG"))
