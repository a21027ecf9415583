"""Studies sized to a class period: the image size (and if need be the epochs) that fit a budget.

A study's time is its plan (updates and images read forward, run by run) at the measured speed of
its model at one image size (:mod:`tlcore.studies.progress`). Given a budget, photos shrink first:
the largest size of the ladder whose estimate fits, the same for every arm, so the comparison
stays fair. Only when the smallest size does not fit either are every run's suggested epochs cut,
all by the same factor. Each size tried is measured (a few timed steps), not scaled from another
by its area: small images cost more than their area says.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from ..data import ImageData
from ..data.base import few_shot
from ..errors import TLCoreError
from ..models import create_backbone

SIZES = (224, 192, 160, 128, 112, 96, 80, 64, 48, 32)  # the ladder, for bodies built for photos
PHOTO_BODY = 64  # a body whose own input side is at least this is shrunk; a smaller one (LeNet-5) is not
MIN_SCALE = 0.2  # epochs are never cut below this share of the suggested: a study that short says nothing
APP_PHOTO_BUDGET_S = 180.0  # the app's default for photos: a study that fits a class period


@dataclass
class Fit:
    budget_s: float
    size: int  # every run's image side
    scale: float  # of every run's suggested epochs (1: as suggested)
    seconds: float  # the estimate at that size and scale
    native: int  # the side the body takes without a budget
    tried: list[tuple[int, float]] = field(default_factory=list)  # (side, estimated seconds), largest first

    def to_dict(self) -> dict:
        return {"budget_minutes": round(self.budget_s / 60, 2), "image_size": self.size, "epoch_scale": round(self.scale, 3),
                "estimate_minutes": round(self.seconds / 60, 2), "native_size": self.native,
                "tried": [{"image_size": s, "estimate_minutes": round(t / 60, 2)} for s, t in self.tried],
                "sentence": self.sentence()}

    def sentence(self) -> str:
        """What the budget chose, with the estimates it chose from."""
        said = f"Budget {_minutes(self.budget_s)}: "
        native_s = self.tried[0][1]
        if self.size == self.native and self.scale == 1:
            return said + f"at {self.native} px it should take about {_minutes(native_s)}, so it runs as it is."
        said += f"at {self.native} px it would take about {_minutes(native_s)}, so every run uses {self.size} px"
        if self.scale < 1:
            said += f" and {self.scale:.0%} of its suggested epochs"
        return said + f" (about {_minutes(self.seconds)}; the same for every arm, so the comparison stays fair)."


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def check_budget(minutes) -> float | None:
    """Seconds for ``minutes`` (None: no budget); a TLCoreError naming a bad value."""
    if minutes is None:
        return None
    if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or not 0.5 <= minutes <= 600:
        raise TLCoreError(f"The budget (--budget-minutes) is minutes from 0.5 to 600, got {minutes!r}.")
    return float(minutes) * 60


def fit_budget(budget_s: float, native: int, estimate: Callable[[int, float], float],
               smallest: int = SIZES[-1]) -> Fit:
    """The largest side of the ladder (from ``native`` down to ``smallest``) whose
    ``estimate(side, epoch_scale)`` fits ``budget_s``; else the smallest, its epochs cut to fit."""
    ladder = [native] + ([s for s in SIZES if smallest <= s < native] if native >= PHOTO_BODY else [])
    tried, i = [], 0
    while i < len(ladder):
        side = ladder[i]
        seconds = estimate(side, 1.0)
        tried.append((side, seconds))
        if seconds <= budget_s:
            return Fit(budget_s, side, 1.0, seconds, native, tried)
        # A smaller side costs at least its area's share of this one's time: skip those that would
        # not fit even so (the last one is always tried).
        i += 1
        while i < len(ladder) - 1 and seconds * (ladder[i] / side) ** 2 > budget_s:
            i += 1
    side, seconds = tried[-1]
    scale = max(MIN_SCALE, budget_s / seconds)
    return Fit(budget_s, side, scale, estimate(side, scale), native, tried)


def fit_study(budget_s: float, data: ImageData, backbone: str, weights: str,
              estimate: Callable[[int, float], float]) -> Fit:
    """:func:`fit_budget` for a study of ``backbone`` from ``weights`` on ``data``: from the body's
    own side down to the data's (never below the ladder's last)."""
    native = create_backbone(backbone, weights="none" if weights == "imagenet" else weights,
                             num_classes=len(data.classes)).spec.size
    return fit_budget(budget_s, native, estimate, smallest=max(SIZES[-1], min(data.size, native)))


VAL_PER_CLASS = 30  # validation images a class a study's run picks its epoch on


def sized_validation(data: ImageData) -> tuple[ImageData, dict]:
    """``data`` with its validation split cut to VAL_PER_CLASS images a class (stratified, the
    same ones every time), and what was kept. A study's runs use validation only to pick their
    epoch and stop early: 300 images do that for ten classes, and each epoch of a run from scratch
    otherwise reads the whole split (1,000 images for cifar10-mini, 6,000 for MNIST) for 50
    training images."""
    kept = {"images": len(data.val), "of": len(data.val), "per_class": VAL_PER_CLASS}
    if not len(data.val) or max(data.class_counts("val")) <= VAL_PER_CLASS:
        return data, kept
    idx = few_shot(data.val.labels, VAL_PER_CLASS, seed=0)
    kept["images"] = len(idx)
    return dataclasses.replace(data, val=data.val.subset(idx)), kept
