"""Skewed classes: a long tail on purpose (``--imbalance R``), and what evens it out in training.

A model trained on counts that differ 20x learns that the rare classes rarely happen and answers
them seldom; its plain accuracy hides that (the common classes dominate it), so a skewed run is
also scored by its balanced accuracy (mean recall over classes) and each class's recall. Two
remedies, either chosen or suggested: ``loss`` weighs each image by the inverse of its class's
count (sklearn's "balanced" weights), ``sampler`` draws the training order with every class
equally likely (with replacement; the epoch keeps its length).
"""
from __future__ import annotations

import dataclasses

import torch

from ..data.base import ImageData, long_tail

SKEW_FACTOR = 4.0  # the automatic choice weighs the loss when the training counts differ more than this
SKEWED = 1.5  # from this ratio on, a run reports each class's recall


def with_long_tail(data: ImageData, ratio: float | None, seed: int) -> ImageData:
    """``data`` with its training split cut to a long tail of ``ratio`` (None: as it is)."""
    if not ratio or ratio <= 1:
        return data
    return dataclasses.replace(data, train=data.train.subset(long_tail(data.train.labels, ratio, seed)))


def counts(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.bincount(labels.cpu(), minlength=classes)


def skew(labels: torch.Tensor, classes: int) -> float:
    """The largest class count over the smallest (classes with no image left out)."""
    return _skew(counts(labels, classes))


def _skew(c: torch.Tensor) -> float:
    c = c[c > 0]
    return float(c.max() / c.min()) if len(c) else 1.0


def resolve(choice: str | None, labels: torch.Tensor, names: list[str]) -> tuple[str, str | None]:
    """The remedy a run uses (``choice``, or for None the automatic one) and, when it acts or
    was chosen by the rule, a sentence naming the counts that decided it."""
    c = counts(labels, len(names))
    r = _skew(c)
    most, least = int(c.argmax()), int(torch.where(c > 0, c, c.max() + 1).argmin())
    said = f"{int(c[most])} training images of '{names[most]}' against {int(c[least])} of '{names[least]}'"
    if choice is None:
        if r <= SKEW_FACTOR:
            return "none", None
        return "loss", (f"Skewed classes: {said} ({r:.1f}x, more than {SKEW_FACTOR:g}x), so each image's loss is "
                        f"weighed by the inverse of its class's count (balance: loss): the rare classes count as "
                        f"much as the common ones.")
    if choice == "none" or r <= 1.0:
        return choice, None
    how = ("each image's loss is weighed by the inverse of its class's count" if choice == "loss" else
           "the training order draws every class equally often")
    return choice, f"Classes balanced ({choice}): {said} ({r:.1f}x); {how}."


def class_weights(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """N / (K * count) for each present class, 0 for an absent one: a balanced set gets all 1."""
    c = counts(labels, classes).float()
    present = int((c > 0).sum())
    return torch.where(c > 0, len(labels) / (present * c.clamp(min=1)), torch.zeros_like(c))


def sample_weights(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Each image's chance of being drawn: 1 / its class's count (every class alike in all)."""
    return 1.0 / counts(labels, classes).float().clamp(min=1)[labels.cpu()]


def prepare(data: ImageData, choice: str | None) -> tuple[dict, str | None]:
    """A run's remedy and its training counts' skew, and the sentence (None: nothing to say)."""
    mode, note = resolve(choice, data.train.labels, list(data.classes))
    return {"mode": mode, "skew": round(skew(data.train.labels, len(data.classes)), 2)}, note
