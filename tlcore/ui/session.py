"""Per-browser-session state. Nothing mutable is global: each session holds its own."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..data import ImageData


@dataclass
class Session:
    dataset: ImageData | None = None
    dataset_label: str = ""
    # Settings chosen on the Model tab, applied when a model is built for training.
    backbone: str = "lenet5"
    weights: str = "none"
    frozen: list[str] = field(default_factory=list)
    train_bn: bool = False
    # The model the Model tab describes (rebuilt when backbone, weights or classes change).
    preview: Any = None
    preview_key: tuple | None = None
