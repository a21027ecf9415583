"""Teach it: a user's own labelled drawings, and a quick fine-tune of a model on them.

Drawings are kept in the form the model reads (28x28, white ink on black, made by
:func:`tlcore.data.sketch.to_mnist`), so they are a dataset at once: they download as an ImageFolder
zip that the Data tab (or ``--dataset``) loads back.

Fine-tuning on a handful of drawings alone would make the model forget everything else, so
the drawings are mixed with a sample of the model's original data (its run's replay sample),
repeated and randomly shifted/rotated so that they weigh about a third of every epoch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..config import RunConfig
from ..data.base import ImageData, Split
from ..errors import TLCoreError, verify_choice
from ..insight.predict import predict_probs
from ..events import Callback, StopToken
from ..models import TransferNet
from ..preprocess import adapt_channels, resize
from ..training.result import RunResult
from ..data.sketch import to_mnist
from .examples import Examples
from ..training.train import train

MAX_DRAWINGS = 500  # per session: a classroom's worth, and a bounded amount of memory (~400 KB)
TEACH_EPOCHS = 4


@dataclass
class Drawings(Examples):
    """A session's labelled drawings, in the 28x28 form the model reads (the labelled-examples store
    the Capture tab's frames share: :mod:`tlcore.studies.examples`)."""

    ZIP_FOLDER: ClassVar[str] = "my-drawings"
    NOUN: ClassVar[str] = "drawings"

    def add(self, sketch, label: str, classes: list[str]) -> np.ndarray:
        """Add one drawing under ``label`` (one of ``classes``); returns its 28x28 form.

        Raises EmptySketch for a blank canvas and TLCoreError for an unknown label or a full set.
        """
        verify_choice(label, "label", classes)
        if len(self) >= MAX_DRAWINGS:
            raise TLCoreError(f"You have {MAX_DRAWINGS} drawings, the most kept; download them or clear some.")
        image = to_mnist(sketch)
        self.append(image, label)
        return image

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for label in self.labels:
            out[label] = out.get(label, 0) + 1
        return dict(sorted(out.items()))

    def summary(self) -> str:
        if not self:
            return "No drawings yet: draw a digit, pick its label, and press **Add to my drawings**."
        parts = ", ".join(f"{k}: {v}" for k, v in self.counts().items())
        return f"**{len(self)} drawing{'s' * (len(self) != 1)}** ({parts})"


def _like(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """28x28 gray drawings -> uint8 at another dataset's channels and size (to mix with it)."""
    if x.shape[-1] != size:
        x = resize(x.float(), size).round().clamp(0, 255).to(torch.uint8)
    return adapt_channels(x, channels).contiguous()


def teaching_data(drawings: Drawings, classes: list[str], replay: ImageData | None) -> ImageData:
    """Drawings (repeated to about a third of the epoch) + the replay sample, as one dataset.

    Validation holds the drawings once and the replay's validation images, so the epoch kept
    is the one that fits both; the test split is the replay's test images (the original task).
    """
    if not drawings:
        raise TLCoreError("Add some drawings first: draw a digit, pick its label, press Add.")
    x, y = drawings.tensor(classes)
    if replay is None:  # drawings are 28x28 gray already
        reps = max(1, math.ceil(256 / len(x)))
        train = Split(x.repeat(reps, 1, 1, 1), y.repeat(reps))
        return ImageData("my drawings", list(classes), train, Split(x, y), Split(x, y), source="drawings")
    x = _like(x, replay.channels, replay.size)
    reps = max(1, min(50, math.ceil(len(replay.train) / (2 * len(x)))))
    train = Split(torch.cat([replay.train.images, x.repeat(reps, 1, 1, 1)]),
                  torch.cat([replay.train.labels, y.repeat(reps)]))
    val = Split(torch.cat([replay.val.images, x]), torch.cat([replay.val.labels, y]))
    return ImageData("my drawings + replay", list(classes), train, val, replay.test, hflip=False,
                     source="drawings")


@dataclass
class TeachResult:
    model: TransferNet
    result: RunResult
    data: ImageData  # what it was taught on: drawings + replay (its test split: the replay's)
    drawings_before: float
    drawings_after: float
    original_before: float | None
    original_after: float | None

    def message(self) -> str:
        n = f"{self.drawings_after:.0%} of your drawings right (was {self.drawings_before:.0%})"
        if self.original_after is None:
            return f"Taught: now {n}."
        return (f"Taught: now {n}; {self.original_after:.1%} on a sample of its original test images "
                f"(was {self.original_before:.1%}).")


def _accuracy(model: TransferNet, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict_probs(model, x).argmax(1) == y).float().mean())


def teach(model: TransferNet, drawings: Drawings, replay: ImageData | None, *, epochs: int = TEACH_EPOCHS,
          callbacks: list[Callback] = (), stop: StopToken | None = None, seed: int = 0,
          out=None, device: str = "auto") -> TeachResult:
    """Fine-tune a copy of ``model`` on ``drawings`` mixed with ``replay``; ``model`` is unchanged.

    ``replay`` is a small sample of the model's original data (see
    :func:`tlcore.runs.checkpoints.replay_sample`); ``out`` saves the new run there.

    The groups that were frozen stay frozen; the rest trains at a tenth of the usual rate with
    augmentation, for a few epochs: enough to learn a handwriting, not enough to forget.
    """
    classes = list(model.classes or [str(i) for i in range(model.num_classes)])
    data = teaching_data(drawings, classes, replay)
    x, y = drawings.tensor(classes)  # predict_probs adapts them to the model's input
    cfg = RunConfig(dataset="my drawings", backbone=model.backbone, preset=None, frozen=sorted(model.frozen),
                    optimizer="sgd", lr=0.01, scheduler="cosine", epochs=epochs, batch_size=64, augment=True,
                    feature_cache=False, seed=seed, label_smoothing=0.1, device=device)
    before_d = _accuracy(model, x, y)
    before_o = _accuracy(model, replay.test.images, replay.test.labels) if replay is not None else None
    result = train(cfg, data=data, callbacks=callbacks, stop=stop, start=model, out=out)
    if result.status == "failed" or not result.history:
        raise TLCoreError(result.message)
    new = result.model
    after_o = result.test.accuracy if (replay is not None and result.test is not None) else None
    return TeachResult(new, result, data, before_d, _accuracy(new, x, y), before_o, after_o)
