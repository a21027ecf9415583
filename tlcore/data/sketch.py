"""A drawing -> what an MNIST model expects: find the ink, crop, fit 20x20, centre by mass in 28x28.

A sketchpad canvas is not an MNIST image: it is large, the digit can be anywhere and of any
size, dark on light or light on dark, often on a transparent layer. MNIST itself was made by
fitting each digit into a 20x20 box (keeping its aspect ratio) and centring its centre of mass
in a 28x28 field; doing the same to a drawing is what makes a digit model read it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .images import ImageRejected, open_image
from ..errors import TLCoreError
from ..preprocess import InputSpec

FIELD, BOX = 28, 20
INK_THRESHOLD = 0.1  # fraction of full contrast that counts as ink
MAX_PIXELS = 4096 * 4096  # a drawing bigger than any screen's canvas is not a drawing


class EmptySketch(TLCoreError):
    """Nothing drawn: the UI shows "Draw a digit", never an error."""


def _image(sketch):
    """Whatever the sketchpad or a caller sends -> a PIL image, or a uint8 numpy array (H, W[, C]).

    Everything stays uint8 and goes through PIL's C conversions: a 420x420 canvas converted to
    float would alone cost more than the whole 2 ms budget of a live prediction.
    """
    if isinstance(sketch, dict):  # gr.Sketchpad / ImageEditor: {"background", "layers", "composite"}
        img = sketch.get("composite")
        if img is None:
            layers = [x for x in sketch.get("layers") or [] if x is not None]
            img = layers[-1] if layers else sketch.get("background")
        sketch = img
    if sketch is None:
        raise EmptySketch("Draw a digit.")
    if isinstance(sketch, (str, Path)):
        name = Path(sketch).name
        try:
            data = Path(sketch).read_bytes()
        except (OSError, ValueError):  # ValueError: a NUL byte in the name
            raise TLCoreError(f"Cannot read the drawing {name!r}.") from None
        try:
            sketch = open_image(data, max_pixels=MAX_PIXELS)
            sketch.load()
        except ImageRejected as e:
            raise TLCoreError(f"The drawing {name!r} is {e.reason}.") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise TLCoreError(f"The drawing {name!r} is not a readable image.") from None
    if isinstance(sketch, Image.Image):
        if sketch.width * sketch.height > MAX_PIXELS:
            raise TLCoreError(f"A drawing can have at most {MAX_PIXELS:,} pixels, got {sketch.width}x{sketch.height}.")
        return sketch
    a = np.asarray(sketch)
    if a.size == 0 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise TLCoreError(f"A drawing must be a gray, RGB or RGBA image, got an array of shape {a.shape}.")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise TLCoreError(f"A drawing can have at most {MAX_PIXELS:,} pixels, got {a.shape[1]}x{a.shape[0]}.")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TLCoreError(f"A drawing must hold numbers, got an array of {a.dtype}.")
    if a.dtype != np.uint8:  # floats in [0, 1] (or [0, 255]) from some callers; NaN is no ink
        a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a


def _alpha(img) -> np.ndarray | None:
    if isinstance(img, np.ndarray):
        # Contiguous once (60 us); comparisons on the strided view would cost twice that each.
        return np.ascontiguousarray(img[..., 3]) if img.ndim == 3 and img.shape[2] == 4 else None
    return np.asarray(img.getchannel("A")) if img.mode in ("RGBA", "LA", "PA") else None


def _gray(img) -> np.ndarray:
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            return img
        img = Image.fromarray(np.ascontiguousarray(img))
    return np.asarray(img.convert("L"))


def ink_map(sketch) -> np.ndarray:
    """(H, W) uint8 ink strength, whatever the polarity and transparency (0 = no ink).

    Transparent pixels are background. Among opaque pixels the background is the majority
    brightness (the border's median); ink is the distance from it.
    """
    img = _image(sketch)
    alpha = _alpha(img)
    if alpha is not None and alpha.min() < 250:
        opaque = alpha > 127
        if np.count_nonzero(opaque) * 2 < opaque.size:  # strokes on a transparent layer: alpha is the ink
            return alpha
        gray = _gray(img)
        if opaque.any():
            gray = np.where(opaque, gray, np.uint8(np.median(gray[opaque])))
    else:
        gray = _gray(img)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    bg = int(np.median(border))
    return np.abs(gray.astype(np.int16) - bg).astype(np.uint8)


def to_mnist(sketch) -> np.ndarray:
    """A 28x28 uint8 image, white ink on black, made as MNIST was made."""
    ink = ink_map(sketch)
    top = int(ink.max())
    mask = ink > max(8, INK_THRESHOLD * top)
    if top == 0 or np.count_nonzero(mask) < 3:
        raise EmptySketch("Draw a digit.")
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    # Shrink with antialiasing as MNIST's makers did, then stretch the ink to full strength (the
    # resize is linear, so the order does not matter; on 20x20 the stretch is 200x cheaper).
    # reducing_gap: a box pre-shrink to 2x the size, then Lanczos: 5x faster, indistinguishable.
    small = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.LANCZOS, reducing_gap=2.0),
                       dtype=np.float32)
    small *= 255.0 / top
    total = small.sum()
    if total > 0:
        cy = float((small.sum(1) * np.arange(nh)).sum() / total)
        cx = float((small.sum(0) * np.arange(nw)).sum() / total)
    else:
        cy, cx = nh / 2, nw / 2
    top_, left = int(round(FIELD / 2 - cy)), int(round(FIELD / 2 - cx))
    top_, left = min(max(top_, 0), FIELD - nh), min(max(left, 0), FIELD - nw)
    field = np.zeros((FIELD, FIELD), np.uint8)
    field[top_:top_ + nh, left:left + nw] = np.clip(small, 0, 255).astype(np.uint8)
    return field


def sketch_batch(sketches, spec: InputSpec) -> torch.Tensor:
    """uint8 (N, C, 28, 28) ready for :func:`tlcore.preprocess.prepare` with ``spec``."""
    x = torch.from_numpy(np.stack([to_mnist(s) for s in sketches])).unsqueeze(1)
    return x.expand(-1, 3, -1, -1).contiguous() if spec.channels == 3 else x


def sketch_files(paths: list[str], spec: InputSpec) -> torch.Tensor:
    return sketch_batch(list(paths), spec)
