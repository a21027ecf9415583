"""The images nobody labelled: where a run's unlabelled pool comes from.

Three ways in, all ending as ``ImageData.unlabelled`` (a :class:`Split` beside the three splits,
never one of them, so nothing that trains, validates or tests reads it by accident):

- an ``unlabelled/`` (or ``unlabeled/``) folder beside the class folders of a zip or folder
  (read by :mod:`tlcore.data.folder`, never as a class);
- loose images, a folder or zip of them in any layout (:func:`load_unlabelled`: the app's second
  upload, ``--unlabelled PATH``);
- the training images beyond K per class with their labels hidden (:func:`hide_labels`,
  ``--labelled-per-class K``), to *measure* what unlabelled images buy.

An image whose label nobody knows has label :data:`UNKNOWN`. Hidden labels stay in the pool's
``labels`` so the pseudo-labels can be scored afterwards; only :mod:`tlcore.training.semi` reads
them, and only to score.
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from ..errors import TLCoreError
from .base import UNKNOWN, ImageData, Split, few_shot
from .folder import _index, _parts, gray
from .images import IMAGE_EXTENSIONS, ImageRejected, decode_image
from .stream import UNREADABLE, FileReader, streamed

REST = "rest"  # --unlabelled rest: the training images beyond --labelled-per-class, labels hidden


def hide_labels(data: ImageData, k: int, seed: int) -> ImageData:
    """``data`` with ``k`` labelled training images per class (chosen with ``seed``, as few-shot
    chooses them); the rest of the training split joins the unlabelled pool, true labels kept aside."""
    if not isinstance(k, int) or k < 1:
        raise TLCoreError(f"labelled_per_class must be a whole number >= 1, got {k!r}.")
    keep = few_shot(data.train.labels, k, seed)
    rest = torch.ones(len(data.train), dtype=torch.bool)
    rest[keep] = False
    hidden = data.train.subset(torch.nonzero(rest).flatten())
    return dataclasses.replace(data, train=data.train.subset(keep), unlabelled=join(data.unlabelled, hidden))


def add_unlabelled(data: ImageData, pool: Split, skipped: dict[str, int] | None = None) -> ImageData:
    """``data`` with ``pool``'s images added to its unlabelled pool (files skipped counted with the data's)."""
    counts = Counter(data.skipped)
    counts.update(skipped or {})
    return dataclasses.replace(data, unlabelled=join(data.unlabelled, pool), skipped=dict(counts))


def join(a: Split | None, b: Split | None) -> Split | None:
    if a is None or not len(a):
        return b
    if b is None or not len(b):
        return a
    if streamed(a.images) or streamed(b.images):
        raise TLCoreError("The unlabelled images of a folder too big for memory cannot be joined with others.")
    return Split(torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]))


def load_unlabelled(paths, size: int, channels: int) -> tuple[Split, dict[str, int]]:
    """Every image in a folder or zip (whatever its layout), or image files, as an unlabelled pool at
    the run's image ``size`` and ``channels``; (the pool, files skipped by reason). Folder names are ignored.

    ``paths``: one path or several (the app's upload of loose images)."""
    skipped: Counter[str] = Counter()
    arrays = []
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    for path in map(lambda p: Path(p).expanduser(), paths):
        if not path.exists():
            raise TLCoreError(f"No such folder, zip or image: {str(path)!r}.")
        for blob in _images(path, skipped):
            try:
                arrays.append(decode_image(blob, size)[0])
            except ImageRejected as e:
                skipped[e.reason] += 1
    if not arrays:
        said = ", ".join(f"{n} {why}" for why, n in skipped.items()) or "no files"
        name = Path(paths[0]).name if len(paths) == 1 else f"the {len(paths)} files"
        raise TLCoreError(f"No readable images in {name} ({said}).")
    return from_arrays(arrays, channels), dict(skipped)


def _images(path: Path, skipped: Counter):
    """The bytes of each image file in ``path`` (a folder, a zip, or one image); the rest counted in ``skipped``."""
    if path.is_file() and path.suffix.lower() != ".zip":
        read, entries = FileReader(path.parent), [(path.name, path.name, path.stat().st_size)]
    else:
        read, entries = _index(path, None)  # the safe listing a labelled upload gets (links, bombs, sizes)
    for rel, ref, _ in entries:
        if _parts(rel) is None:  # junk a labelled upload skips too (__MACOSX, dot files)
            continue
        if ref is None:
            skipped["unreadable, too large or a link"] += 1
        elif PurePosixPath(rel).suffix.lower() not in IMAGE_EXTENSIONS:
            skipped["not images"] += 1
        else:
            try:
                yield read(ref)
            except UNREADABLE:
                skipped["unreadable, too large or a link"] += 1


def from_arrays(arrays: list, channels: int) -> Split:
    """Decoded (size, size, 3) uint8 arrays as an unlabelled Split with ``channels`` channels."""
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    x = gray(x) if channels == 1 else x  # a colour photo into a gray run
    return Split(x, torch.full((len(x),), UNKNOWN, dtype=torch.int64))


def with_pool(data: ImageData, labelled_per_class: int | None, unlabelled: str | None, seed: int) -> ImageData:
    """``data`` with the pool a run's settings ask for: the training images beyond
    ``labelled_per_class`` (labels hidden), and a folder or zip of loose images (``unlabelled``)."""
    if labelled_per_class is not None:
        data = hide_labels(data, labelled_per_class, seed)
    if unlabelled is not None and unlabelled != REST:
        data = add_unlabelled(data, *load_unlabelled(unlabelled, data.size, data.channels))
    return data
