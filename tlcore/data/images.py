"""Decoding one untrusted image file into a fixed-size uint8 array.

Uploaded images come in every mode PIL knows: 16-bit grayscale, CMYK, palette with
transparency, animated GIFs. Each is turned into 8-bit gray or RGB; anything that is not an
image, is corrupt, or would expand to a decompression bomb raises :class:`ImageRejected`
with the reason, so the folder loader can skip it and count why.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
# 40 megapixels: bigger than any camera photo a class brings, far below a bomb's billions.
MAX_PIXELS = 40_000_000
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class ImageRejected(Exception):
    """This file is not usable as an image; ``reason`` is a short plural-friendly key."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open (header only) and check the pixel count before anything is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("over the pixel limit (decompression bomb)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageRejected("not a readable image") from None
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageRejected("not a readable image")
    if w * h > max_pixels:
        raise ImageRejected("over the pixel limit (decompression bomb)")
    return im


def _to_8bit(im: Image.Image) -> tuple[Image.Image, bool]:
    """Any PIL mode -> ("L" or "RGB", was_gray). Alpha is composited on white."""
    gray = im.mode in _GRAY_MODES or (im.mode == "P" and _palette_is_gray(im))
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # PIL's convert("L") clips 16-bit values at 255; scale by the real range instead.
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return Image.fromarray(a.round().astype(np.uint8), "L"), True
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    return im.convert("L" if gray else "RGB"), gray


def _palette_is_gray(im: Image.Image) -> bool:
    pal = im.getpalette() or []
    rgb = np.asarray(pal[: len(pal) // 3 * 3]).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())


def decode_image(data: bytes, size: int, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, bool]:
    """Decode ``data`` to a ``size`` x ``size`` uint8 array (center crop, antialiased).

    Returns:
        (array of shape (size, size, 3), whether the source was grayscale). Gray images are
        returned with three equal channels so a folder can mix modes; the caller decides.
    """
    im = open_image(data, max_pixels)
    try:
        # JPEG can decode at 1/2..1/8 scale for free: a large speedup for big photos.
        im.draft(im.mode, (size, size))
        im.seek(0)  # animated images: the first frame
        im, gray = _to_8bit(im)
        im = ImageOps.fit(im, (size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except ImageRejected:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        raise ImageRejected("corrupt or truncated") from None
    return arr, gray


def image_side(data: bytes) -> int | None:
    """Shorter side of an image from its header alone, or None if it is not an image."""
    try:
        return min(open_image(data).size)
    except ImageRejected:
        return None
