"""The one in-memory form every dataset takes, and the seeded splits that make it.

A dataset is uint8 tensors (N, C, H, W) per split plus labels and class names. Keeping uint8
at native size makes even MNIST 47 MB, small enough to live on the training device whole;
conversion to the model's input happens per batch (see :mod:`tlcore.data.loader`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import TLCoreError
from .stream import take

SPLITS = ("train", "val", "test")
UNKNOWN = -1  # the label of an image nobody labelled (tlcore.data.unlabelled)


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, C, H, W), or ImageFiles standing for one (a streamed folder)
    labels: torch.Tensor  # int64 (N,)

    def __post_init__(self):
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, (self.images.dtype, self.images.shape)
        assert self.labels.dtype == torch.int64 and len(self.labels) == len(self.images)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: torch.Tensor) -> "Split":
        return Split(take(self.images, idx), self.labels[idx])


@dataclass
class ImageData:
    """A dataset ready for training: three splits, class names and how its images look.

    ``hflip`` says whether a mirrored image keeps its label (photos yes, digits no), which
    augmentation needs to know. ``skipped`` counts files left out, by reason.
    """

    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split
    hflip: bool = False
    skipped: dict[str, int] = field(default_factory=dict)
    source: str = ""
    split_note: str = ""  # how an upload's folders became the splits, in words (tlcore.data.folder)
    note: str = ""  # how the images are held, when it is not in memory (tlcore.data.stream)
    # Images without labels (tlcore.data.unlabelled), beside the splits, never one of them: label -1
    # where nobody knows it; a hidden one (--labelled-per-class) is kept only to score pseudo-labels.
    unlabelled: Split | None = None
    pseudo: dict | None = None  # what semi-supervised labelling gave train (tlcore.training.semi)

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def size(self) -> int:
        return self.train.images.shape[-1]

    @property
    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def class_counts(self, split: str = "train") -> list[int]:
        return torch.bincount(self.splits[split].labels, minlength=len(self.classes)).tolist()

    def describe(self) -> dict:
        """The JSON summary the CLI and the Data tab show."""
        d = {
            "name": self.name,
            "classes": list(self.classes),
            "channels": self.channels,
            "size": self.size,
            "splits": {k: len(v) for k, v in self.splits.items()},
        }
        if self.unlabelled is not None:
            d["unlabelled"] = len(self.unlabelled)
        if self.pseudo:
            d["pseudo_labels"] = dict(self.pseudo)
        if self.skipped:
            d["skipped"] = dict(self.skipped)
        if self.split_note:
            d["split_note"] = self.split_note
        if self.note:
            d["note"] = self.note
        return d


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (keep, take) with ``fraction`` of every class in ``take``.

    Each class with at least two samples gives at least one to ``take`` so a small class is
    never absent from validation; a class of one stays in ``keep``. Deterministic in ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    keep, take = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        take.append(idx[:n])
        keep.append(idx[n:])
    return torch.cat(keep).sort().values, torch.cat(take).sort().values


def per_class(labels: torch.Tensor, keep, seed: int) -> torch.Tensor:
    """Indices of at most ``keep(i)`` samples of the i-th present class, chosen with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, c in enumerate(torch.unique(labels).tolist()):
        idx = torch.nonzero(labels == c).flatten()
        out.append(idx[torch.randperm(len(idx), generator=g)[:keep(i)]])
    return torch.cat(out).sort().values


def few_shot(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Indices of at most ``k`` samples per class, chosen with ``seed``."""
    return per_class(labels, lambda i: k, seed)


def long_tail(labels: torch.Tensor, ratio: float, seed: int) -> torch.Tensor:
    """Indices that keep class counts decaying exponentially, in class order, from the smallest
    class's count down to 1/``ratio`` of it (at least one image): the long-tail benchmarks' profile."""
    present = torch.unique(labels)
    top = int(torch.bincount(labels)[present].min())
    last = max(len(present) - 1, 1)
    return per_class(labels, lambda i: max(1, int(top * ratio ** (-i / last))), seed)


def check_fraction(value: float, arg: str) -> float:
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        raise TLCoreError(f"{arg} must be a fraction between 0 and 1 (exclusive), got {value!r}.")
    return float(value)


def finish(
    name: str,
    classes: list[str],
    train: Split,
    test: Split,
    *,
    val: Split | None = None,
    val_fraction: float = 0.1,
    samples_per_class: int | None = None,
    seed: int = 0,
    **extra,
) -> ImageData:
    """Carve validation from train when there is none, then apply few-shot to train.

    Validation is carved before few-shot sampling so that asking for 5 shots still leaves an
    honest validation set to judge them on.
    """
    check_fraction(val_fraction, "val_fraction")
    if val is None:
        keep, take = stratified_split(train.labels, val_fraction, seed)
        train, val = train.subset(keep), train.subset(take)
    if samples_per_class is not None:
        if not isinstance(samples_per_class, int) or samples_per_class < 1:
            raise TLCoreError(f"samples_per_class must be a whole number >= 1, got {samples_per_class!r}.")
        train = train.subset(few_shot(train.labels, samples_per_class, seed))
    if len(train) == 0:
        raise TLCoreError(f"Dataset {name!r} has no training images.")
    return ImageData(name, classes, train, val, test, **extra)
