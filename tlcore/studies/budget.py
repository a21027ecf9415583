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

from ..config import RunConfig
from ..data import ImageData
from ..data.base import few_shot
from ..errors import TLCoreError
from ..models import body_frozen, create_backbone, frozen_groups
from .progress import Clock, Speed, measure_speed, planned

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
    single: bool = False  # one run (train), not a study's arms

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
        who = "the run" if self.single else "every run"
        said += f"at {self.native} px it would take about {_minutes(native_s)}, so {who} uses {self.size} px"
        if self.scale < 1:
            said += f" and {self.scale:.0%} of its {'' if self.single else 'suggested '}epochs"
        fair = "" if self.single else "; the same for every arm, so the comparison stays fair"
        return said + f" (about {_minutes(self.seconds)}{fair})."


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
              estimate: Callable[[int, float], float], native: int | None = None) -> Fit:
    """:func:`fit_budget` for a study of ``backbone`` from ``weights`` on ``data``: from the body's
    own side (``native``, read from the body when not given) down to the data's (never below the
    ladder's last)."""
    native = native or create_backbone(backbone, weights="none" if weights == "imagenet" else weights,
                                       num_classes=len(data.classes)).spec.size
    return fit_budget(budget_s, native, estimate, smallest=max(SIZES[-1], min(data.size, native)))


def fit_run(budget_s: float, cfg: RunConfig, data: ImageData) -> tuple[RunConfig, Fit]:
    """One run of ``cfg`` on ``data`` sized to ``budget_s`` by the studies' rule (``train
    --budget-minutes``): the largest image side whose estimate fits, its epochs cut only below the
    ladder; the config at that side and those epochs. The estimate is the run's plan at the
    speed timed at each side: for a probe on cached features, one forward pass of every image
    (training, validation, test) and its head's updates; otherwise every update of the network."""
    model = create_backbone(cfg.backbone, weights="none" if cfg.weights == "imagenet" else cfg.weights,
                            num_classes=len(data.classes))
    still = body_frozen(frozen_groups(model, preset=cfg.preset, frozen=cfg.frozen), model.group_names(),
                        train_bn=cfg.train_bn)
    cached = still and cfg.feature_cache and not cfg.augment  # as the training loop decides (augment None: off)
    kind = "linear-probe" if cached else "scratch" if cfg.weights == "none" else "fine-tune"
    sizes = dict(n_train=len(data.train), n_val=len(data.val), n_test=len(data.test))
    speeds: dict[int, Speed] = {}  # by side: the smallest is asked again with its epochs cut

    def at(side: int, scale: float) -> RunConfig:
        return dataclasses.replace(cfg, image_size=side, epochs=max(1, round(cfg.epochs * scale)))

    def estimate(side: int, scale: float) -> float:
        plan = planned("the run", kind, at(side, scale), **sizes)
        plan.images += sum(sizes.values()) if cached else 0
        if side not in speeds:
            speeds[side] = measure_speed(cfg.backbone, num_classes=len(data.classes), image_size=side,
                                         batch_size=min(cfg.batch_size, len(data.train)), device=cfg.device,
                                         whole=not cached)
        return Clock([plan], speed=speeds[side]).estimate()
    fit = dataclasses.replace(fit_study(budget_s, data, cfg.backbone, cfg.weights, estimate, model.spec.size),
                              single=True)
    return at(fit.size, fit.scale), fit


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
