"""A drawing -> what an MNIST model expects: find the ink, crop, fit 20x20, centre by mass in 28x28.

A sketchpad canvas is not an MNIST image: it is large, the digit can be anywhere and of any
size, dark on light or light on dark, often on a transparent layer. MNIST itself was made by
fitting each digit into a 20x20 box (keeping its aspect ratio) and centring its centre of mass
in a 28x28 field; doing the same to a drawing is what makes a digit model read it.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import TLCoreError
from .preprocess import InputSpec

FIELD, BOX = 28, 20
INK_THRESHOLD = 0.1  # fraction of full contrast that counts as ink


class EmptySketch(TLCoreError):
    """Nothing drawn: the UI shows "Draw a digit", never an error."""


def _to_array(sketch) -> np.ndarray:
    """Whatever the sketchpad or a caller sends -> float RGBA array in [0, 1], shape (H, W, 4)."""
    if isinstance(sketch, dict):  # gr.Sketchpad / ImageEditor: {"background", "layers", "composite"}
        img = sketch.get("composite")
        if img is None:
            layers = [x for x in sketch.get("layers") or [] if x is not None]
            img = layers[-1] if layers else sketch.get("background")
        sketch = img
    if sketch is None:
        raise EmptySketch("Draw a digit.")
    if isinstance(sketch, (str, Path)):
        try:
            sketch = Image.open(io.BytesIO(Path(sketch).read_bytes()))
        except OSError:
            raise TLCoreError(f"Cannot read the drawing {str(sketch)!r}.") from None
    if isinstance(sketch, Image.Image):
        sketch = np.asarray(sketch.convert("RGBA"))
    a = np.asarray(sketch)
    if a.ndim == 2:
        a = np.stack([a, a, a, np.full_like(a, 255 if a.dtype == np.uint8 else 1)], -1)
    elif a.ndim == 3 and a.shape[2] == 3:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255 if a.dtype == np.uint8 else 1, a.dtype)], -1)
    if a.ndim != 3 or a.shape[2] != 4 or a.size == 0:
        raise TLCoreError(f"A drawing must be a gray, RGB or RGBA image, got an array of shape {a.shape}.")
    a = a.astype(np.float32)
    return a / 255.0 if a.max() > 1.0 else a


def ink_map(sketch) -> np.ndarray:
    """(H, W) ink strength in [0, 1], whatever the polarity and transparency.

    Transparent pixels are background. Among opaque pixels the background is the majority
    brightness (the border's median); ink is the distance from it.
    """
    a = _to_array(sketch)
    gray = a[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = a[..., 3]
    if alpha.min() < 0.99 and alpha.max() > 0:  # strokes on a transparent layer: alpha is the ink
        opaque = alpha > 0.5
        if opaque.mean() < 0.5:
            return alpha
        gray = np.where(opaque, gray, np.median(gray[opaque]))
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    bg = float(np.median(border))
    ink = np.abs(gray - bg)
    top = ink.max()
    return ink / top if top > 0 else ink


def to_mnist(sketch) -> np.ndarray:
    """A 28x28 uint8 image, white ink on black, made as MNIST was made."""
    ink = ink_map(sketch)
    mask = ink > INK_THRESHOLD
    if mask.sum() < 3:
        raise EmptySketch("Draw a digit.")
    ys, xs = np.nonzero(mask)
    crop = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    im = Image.fromarray((crop * 255).astype(np.uint8), "L").resize((nw, nh), Image.Resampling.LANCZOS)
    small = np.asarray(im, dtype=np.float32)
    field = np.zeros((FIELD, FIELD), np.float32)
    total = small.sum()
    cy, cx = ((np.indices(small.shape) * small).reshape(2, -1).sum(1) / total) if total > 0 else (nh / 2, nw / 2)
    top = int(round(FIELD / 2 - cy))
    left = int(round(FIELD / 2 - cx))
    top, left = min(max(top, 0), FIELD - nh), min(max(left, 0), FIELD - nw)
    field[top:top + nh, left:left + nw] = small
    return np.clip(field, 0, 255).astype(np.uint8)


def sketch_batch(sketches, spec: InputSpec) -> torch.Tensor:
    """uint8 (N, C, 28, 28) ready for :func:`tlcore.preprocess.prepare` with ``spec``."""
    x = torch.from_numpy(np.stack([to_mnist(s) for s in sketches])).unsqueeze(1)
    return x.expand(-1, 3, -1, -1).contiguous() if spec.channels == 3 else x


def sketch_files(paths: list[str], spec: InputSpec) -> torch.Tensor:
    return sketch_batch(list(paths), spec)
