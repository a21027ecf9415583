"""Registered datasets: scikit-learn's digits and the torchvision sets.

The torchvision sets differ only in data (class, files, class names, whether flips are
safe), so each is a :class:`TorchvisionSet` row, not code. They are read with
``download=False`` first: a read-only shared folder works, and nothing touches the network
when the files are there. Missing files are downloaded into a writable folder when online;
offline, the error names the folder and the files that were looked for.
"""
from __future__ import annotations

import re

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataNotFoundError
from ..paths import cache_dir, data_dir
from ..registry import Registry
from .base import ImageData, Split, finish, stratified_split

DATASETS: Registry = Registry("dataset")

DIGIT_CLASSES = [str(i) for i in range(10)]


@DATASETS.register
def digits(*, seed: int = 0, val_fraction: float = 0.1, samples_per_class: int | None = None,
           test_fraction: float = 0.2, **_) -> ImageData:
    """scikit-learn's 1,797 8x8 handwritten digits: bundled, so it works offline."""
    from sklearn.datasets import load_digits

    d = load_digits()
    # Pixel values are 0..16 ink intensities: scale to 0..255, ink bright on dark like MNIST.
    x = torch.from_numpy(np.round(d.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    keep, take = stratified_split(y, test_fraction, seed)
    return finish("digits", DIGIT_CLASSES, Split(x[keep], y[keep]), Split(x[take], y[take]),
                  val_fraction=val_fraction, samples_per_class=samples_per_class, seed=seed,
                  source="sklearn.datasets.load_digits")


@dataclass(frozen=True)
class TorchvisionSet:
    """One torchvision dataset: which class, what files it needs, how to read its arrays."""

    name: str
    cls: str
    files: tuple[str, ...]  # relative to the root, for the "not found" message
    classes: tuple[str, ...] | None = None  # None: use the torchvision class's own
    hflip: bool = False
    split_arg: str = "train"  # "train" (train=True/False) or "split" (split="train"/"test")
    extra: dict = field(default_factory=dict)
    label_offset: int = 0  # EMNIST letters count from 1
    transpose: bool = False  # EMNIST is stored transposed

    def _build(self, root: Path, train: bool, download: bool):
        import torchvision.datasets as tvd

        kw = dict(self.extra)
        if self.split_arg == "train":
            kw["train"] = train
        else:
            kw["split"] = "train" if train else "test"
        return getattr(tvd, self.cls)(root=str(root), download=download, **kw)

    def _arrays(self, ds) -> tuple[torch.Tensor, torch.Tensor]:
        x = ds.data
        x = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
        y = getattr(ds, "targets", None)
        if y is None:
            y = ds.labels
        y = torch.as_tensor(np.asarray(y), dtype=torch.int64) - self.label_offset
        if x.ndim == 3:
            x = x.unsqueeze(1)
        elif x.shape[-1] == 3:  # CIFAR is NHWC
            x = x.permute(0, 3, 1, 2)
        if self.transpose:
            x = x.transpose(-1, -2)
        return x.to(torch.uint8).contiguous(), y

    def load_raw(self, root: Path | None, download: bool):
        """Both splits and class names; tries the data folder, the cache, then a download."""
        roots = [data_dir(root)]
        if cache_dir() / "datasets" not in roots:
            roots.append(cache_dir() / "datasets")
        for r in roots:
            try:
                tr, te = self._build(r, True, False), self._build(r, False, False)
                return tr, te
            except (RuntimeError, OSError):
                continue
        looked = ", ".join(str(roots[0] / f) for f in self.files)
        if download:
            # Downloads go to our own cache, never into the data folder: that one may be a
            # shared read-only copy (and root ignores write bits, so we cannot ask).
            target = roots[-1]
            try:
                target.mkdir(parents=True, exist_ok=True)
                return self._build(target, True, True), self._build(target, False, True)
            except Exception as e:  # urllib, ssl, socket, zip and http errors all mean "could not fetch"
                raise DataNotFoundError(
                    f"Dataset {self.name!r} is not on this machine and could not be downloaded ({fetch_failure(e)}). "
                    f"Set TLCORE_DATA_DIR (or --data-dir) to a folder with {self.files[0].split('/')[0]}/raw/ "
                    f"in torchvision's layout, or connect to the internet once."
                ) from None
        raise DataNotFoundError(
            f"Dataset {self.name!r} was not found (looked for {looked}). Download it with "
            f"download enabled while online, or point --data-dir / TLCORE_DATA_DIR at a folder that has it."
        )

    def splits(self, data_dir: Path | None = None, download: bool = True) -> tuple[Split, Split, list[str]]:
        """The train and test splits as torchvision ships them, and the class names."""
        tr, te = self.load_raw(data_dir, download)
        classes = list(self.classes) if self.classes else [str(c) for c in tr.classes]
        return Split(*self._arrays(tr)), Split(*self._arrays(te)), classes

    def __call__(self, *, data_dir: Path | None = None, download: bool = True, seed: int = 0,
                 val_fraction: float = 0.1, samples_per_class: int | None = None, **_) -> ImageData:
        train, test, classes = self.splits(data_dir, download)
        return finish(self.name, classes, train, test, val_fraction=val_fraction,
                      samples_per_class=samples_per_class, seed=seed, hflip=self.hflip,
                      source=f"torchvision.datasets.{self.cls}")


def fetch_failure(e: Exception) -> str:
    """Why a download failed, in a few words: torchvision's error lists every mirror with its
    urllib error, a screenful where one reason ("no connection: Name or service not known") does."""
    reasons = re.findall(r"<urlopen error (?:\[Errno -?\d+\] )?(.*?)>", str(e))
    if reasons:
        return f"no connection: {reasons[-1]}"
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return first if len(first) <= 120 else first[:117] + "…"


def _mnist_files(folder: str, prefix: str = "") -> tuple[str, ...]:
    return tuple(f"{folder}/raw/{prefix}{s}" for s in
                 ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


_LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")

for _set in (
    TorchvisionSet("mnist", "MNIST", _mnist_files("MNIST"), classes=tuple(DIGIT_CLASSES)),
    TorchvisionSet("fashion-mnist", "FashionMNIST", _mnist_files("FashionMNIST"), hflip=True),
    TorchvisionSet("kmnist", "KMNIST", _mnist_files("KMNIST")),
    TorchvisionSet("emnist-letters", "EMNIST", ("EMNIST/raw/emnist-letters-train-images-idx3-ubyte",
                                                 "EMNIST/raw/emnist-letters-test-images-idx3-ubyte"),
                   classes=_LETTERS, split_arg="train", extra={"split": "letters"}, label_offset=1,
                   transpose=True),
    TorchvisionSet("usps", "USPS", ("usps.bz2", "usps.t.bz2"), classes=tuple(DIGIT_CLASSES)),
    TorchvisionSet("svhn", "SVHN", ("train_32x32.mat", "test_32x32.mat"), classes=tuple(DIGIT_CLASSES),
                   split_arg="split"),
    TorchvisionSet("cifar10", "CIFAR10", ("cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"),
                   hflip=True),
    TorchvisionSet("cifar100", "CIFAR100", ("cifar-100-python/train", "cifar-100-python/test"), hflip=True),
):
    DATASETS.register(_set, name=_set.name)
