"""Data sets made from MNIST, each a known step away from it: a family of targets for one source.

How far a target lies from the source decides what transfer can do (:mod:`tlcore.studies.shift`);
to see that, one needs targets at several distances that a classroom has offline. These are built
from the MNIST files (and, for the coloured one, CIFAR-10 photos) when asked for, the same images
every time (their own fixed seed, not the run's):

- ``mnist-inverted``: every pixel inverted, dark ink on white paper;
- ``mnist-small``: every digit shrunk to half its size in the middle of its 28x28 canvas;
- ``mnist-m``: MNIST-M's recipe (Ganin & Lempitsky, 2015) with CIFAR-10 photos for its BSDS500
  patches: each image is the absolute difference of a random 28x28 photo patch and the digit,
  channel by channel, so the digit shows as the photo's negative.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataNotFoundError
from ..paths import data_dir as find_data_dir
from .base import ImageData, Split, finish
from .sources import DATASETS

BUILD_SEED = 1234  # the derived images are the same on every call, whatever the run's seed
PATCH_POOL = 2000  # CIFAR-10 photos the MNIST-M patches are cut from
PHOTO_ZIPS = ("cifar10-mini.zip", "cifar10.zip")  # looked for in the data folder, in this order


def inverted(x: torch.Tensor) -> torch.Tensor:
    return 255 - x


def half_size(x: torch.Tensor) -> torch.Tensor:
    """Each digit at half its size, centred on a canvas of the original size."""
    side = x.shape[-1]
    small = F.interpolate(x.float(), size=(side // 2, side // 2), mode="bilinear", antialias=True)
    pad = (side - side // 2) // 2
    return F.pad(small, (pad, side - side // 2 - pad) * 2).round().clamp(0, 255).to(torch.uint8)


def blended(x: torch.Tensor, photos: torch.Tensor, g: torch.Generator, chunk: int = 4096) -> torch.Tensor:
    """MNIST-M: |patch - digit| per channel, a random patch of a random photo for each digit."""
    n, side = len(x), x.shape[-1]
    which = torch.randint(len(photos), (n,), generator=g)
    dy, dx = (torch.randint(photos.shape[-1] - side + 1, (n,), generator=g) for _ in range(2))
    out = torch.empty(n, 3, side, side, dtype=torch.uint8)
    for i in range(0, n, chunk):  # in chunks: the gather's index tensors are 8 bytes a pixel
        s = slice(i, i + chunk)
        rows = (dy[s, None] + torch.arange(side))[:, None, :, None]  # (n, 1, side, 1)
        cols = (dx[s, None] + torch.arange(side))[:, None, None, :]  # (n, 1, 1, side)
        patches = photos[which[s, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]
        out[s] = (patches.short() - x[s].short()).abs().to(torch.uint8)
    return out


def photo_patches(root: Path) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) CIFAR-10 training photos from the data folder's zip."""
    from PIL import Image

    for name in PHOTO_ZIPS:
        path = root / name
        if not path.exists():
            continue
        with zipfile.ZipFile(path) as z:
            members = sorted(m for m in z.namelist() if "/train/" in m and m.lower().endswith((".jpg", ".png")))
            step = max(1, len(members) // PATCH_POOL)
            photos = [np.asarray(Image.open(io.BytesIO(z.read(m))).convert("RGB").resize((32, 32)))
                      for m in members[::step][:PATCH_POOL]]
        return torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).contiguous()
    raise DataNotFoundError(f"'mnist-m' cuts its backgrounds from CIFAR-10 photos: put {PHOTO_ZIPS[0]} (or "
                            f"{PHOTO_ZIPS[1]}) in the data folder ({root}; TLCORE_DATA_DIR or --data-dir).")


def _derived(name: str, how: str, change, *, data_dir=None, download: bool = True, seed: int = 0,
             val_fraction: float = 0.1, samples_per_class: int | None = None, **_) -> ImageData:
    try:
        train, test, classes = DATASETS.get("mnist").splits(data_dir, download)
    except DataNotFoundError as e:
        raise DataNotFoundError(f"Dataset {name!r} is made from MNIST: {e}") from None
    train, test = (Split(change(s.images, offset), s.labels) for s, offset in ((train, 0), (test, 1)))
    return finish(name, classes, train, test, val_fraction=val_fraction, samples_per_class=samples_per_class,
                  seed=seed, source=f"MNIST, {how} (tlcore.data.derived)")


@DATASETS.register(name="mnist-inverted")
def mnist_inverted(**options) -> ImageData:
    """MNIST with every pixel inverted: dark ink on white paper."""
    return _derived("mnist-inverted", "inverted", lambda x, _: inverted(x), **options)


@DATASETS.register(name="mnist-small")
def mnist_small(**options) -> ImageData:
    """MNIST with every digit at half size, centred: another scale."""
    return _derived("mnist-small", "digits at half size", lambda x, _: half_size(x), **options)


@DATASETS.register(name="mnist-m")
def mnist_m(**options) -> ImageData:
    """MNIST-M-like: digits blended over CIFAR-10 photo patches (needs cifar10-mini.zip in the data folder)."""
    photos = photo_patches(find_data_dir(options.get("data_dir")))

    def change(x, offset):  # train and test get patches of their own draw
        return blended(x, photos, torch.Generator().manual_seed(BUILD_SEED + offset))
    return _derived("mnist-m", "over CIFAR-10 photo patches", change, **options)
