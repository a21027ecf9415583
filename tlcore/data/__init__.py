"""Datasets: a registry of named sources plus folders and zips, all loaded into :class:`ImageData`."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import TLCoreError
from .base import ImageData, Split
from .folder import load_image_folder, load_labelled
from .loader import Augment, BatchLoader
from .sources import DATASETS
from . import derived  # noqa: F401  (registers the sets made from MNIST)
from .torchset import SplitDataset

__all__ = ["ImageData", "Split", "Augment", "BatchLoader", "SplitDataset", "list_datasets", "load_dataset", "load_labelled",
           "is_path"]


def list_datasets() -> list[str]:
    """Registered dataset names; a folder or .zip path is accepted wherever a name is."""
    return DATASETS.names()


def is_path(name: str) -> bool:
    return name not in DATASETS and (os.sep in name or "/" in name or name.lower().endswith(".zip") or Path(name).exists())


def load_dataset(name: str, **options) -> ImageData:
    """Load a registered dataset by name, or an ImageFolder directory / zip by path.

    Args:
        name: a name from :func:`list_datasets` or a path.
        **options: ``seed``, ``val_fraction``, ``samples_per_class``, ``data_dir``,
            ``download`` (registered sets), ``image_size`` and ``test_fraction`` (folders).
    """
    if not isinstance(name, str) or not name:
        raise TLCoreError(f"A dataset name or path is needed, got {name!r}.")
    if is_path(name):
        return load_image_folder(name, **options)
    if name not in DATASETS:
        raise TLCoreError(
            f"Unknown dataset {name!r}: not a registered name ({', '.join(DATASETS.names())}) "
            f"nor an existing folder or .zip."
        )
    return DATASETS.get(name)(**options)
