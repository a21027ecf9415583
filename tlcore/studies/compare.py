"""Does transfer help here? One recipe from the source weights and from random weights, side by side.

Three strategies use a source model (:data:`~tlcore.config.STRATEGIES`):

- ``scratch``: the source's architecture with random weights, every layer trained;
- ``linear-probe``: the source body frozen, a new head trained on its features;
- ``fine-tune``: the source body and a new head all trained (the body at a tenth of the rate).

Each gets what :mod:`tlcore.training.suggest` suggests for it and that much data, under the same
fair budget rule (:data:`tlcore.studies.curve.BUDGET_RULE`), so no arm is an undertrained straw
man. Transfer vs scratch compares like with like by default: the source fine-tuned whole against
scratch, both training every layer. A frozen body may be asked for; the summary then says which
arm trains what, and names that as the cause when scratch wins. Its words come from its numbers
(:mod:`tlcore.studies.verdict`). The data-efficiency curve over many shot counts is
:mod:`tlcore.studies.curve`.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import STRATEGIES, RunConfig
from ..data import ImageData
from ..data.base import few_shot
from ..errors import TLCoreError, verify_choice
from ..events import StopToken
from ..insight.feature_space import features_of, knn_accuracy
from ..models import body_frozen, create_backbone, frozen_groups
from ..training.result import RunResult, Status
from ..training.suggest import suggested_for
from ..training.train import train
from .budget import Fit, fit_study
from .progress import Clock, Progress, measure_speed, planned
from .shift import Shift, from_saved_source
from .verdict import HeadStart, SourceFit, ahead, cause


def strategy_config(strategy: str, *, dataset: str, backbone: str, weights: str, n_train: int, seed: int = 0,
                    scale: float = 1.0, **fixed) -> RunConfig:
    """The RunConfig of ``strategy`` (one of :data:`STRATEGIES`) from source ``weights``, with the
    suggested settings for ``n_train`` images at ``scale`` times the budget; ``fixed`` settings win."""
    verify_choice(strategy, "strategy", STRATEGIES)
    cfg = RunConfig(dataset=dataset, backbone=backbone, weights="none" if strategy == "scratch" else weights,
                    preset="linear-probe" if strategy == "linear-probe" else "full", seed=seed, **fixed)
    chosen = {k: v for k, v in suggested_for(cfg, n_train, scale=scale).items() if k not in fixed}
    return dataclasses.replace(cfg, **chosen).validate()


@dataclass
class Setup:
    """What was compared: how much data, what the transfer arm trains (scratch trains every layer),
    and, when measured, how near the source is to the target."""

    per_class: float  # training images per class
    transfer_trains: str  # "every layer", "only its new head (the body frozen)", "fc1, fc2, head (conv1, conv2 frozen)"
    body_frozen: bool  # the transfer arm's body does not learn at all
    fit: SourceFit | None = None
    shift: Shift | None = None  # the data's distance from the source's own (a saved source with its sample)

    def to_dict(self) -> dict:
        return {"per_class": self.per_class, "transfer_trains": self.transfer_trains, "scratch_trains": "every layer",
                "body_frozen": self.body_frozen, "source_fit": self.fit.to_dict() if self.fit else None,
                "shift": self.shift.to_dict() if self.shift else None}

    def distance_words(self) -> str:
        """How far the data lies from the source's, in the source's own units ("" when not measured)."""
        if not self.shift or not self.shift.targets:
            return ""
        t, s = self.shift.targets[0], self.shift
        return (f" How far: this data lies {t.relative:.1f}x as far from the source's data ('{s.source}') as new "
                f"images of that data do (Fréchet distance of the source model's features, {s.images} images a side).")


@dataclass
class TransferVsScratch:
    """One recipe from the source weights and from random weights, on the same data and seed."""

    source: str  # the source, as a user names it
    transfer: RunResult
    scratch: RunResult | None  # None if stopped before it ran
    setup: Setup
    budget: Fit | None = None  # what a time budget chose for both runs

    @property
    def finished(self) -> bool:
        t, s = self.transfer, self.scratch
        return s is not None and t.test is not None and s.test is not None and bool(t.history and s.history)

    def histories(self) -> dict[str, list]:
        """Each arm's per-epoch history under its chart label: what the chart draws and the numbers
        of :meth:`head_start` are read from."""
        out = {f"from {self.source}": self.transfer.history}
        if self.scratch is not None:
            out["from scratch"] = self.scratch.history
        return out

    def head_start(self) -> HeadStart:
        """Accuracy after one epoch, and the epochs each arm takes to a level both reach."""
        return HeadStart.of(self.transfer.history, self.scratch.history)

    def verdict(self) -> tuple[str, str, str]:
        """``(ahead, cause key, cause sentence)``: "transfer", "scratch" or "even", and why."""
        gap = self.transfer.test.accuracy - self.scratch.test.accuracy
        key, why = cause(gap, per_class=self.setup.per_class, body_frozen=self.setup.body_frozen,
                         fit=self.setup.fit, head=self.head_start(), trains=self.setup.transfer_trains)
        return ahead(gap), key, why

    def summary(self) -> str:
        """The answer in plain words, each claim with the number it rests on."""
        if not self.finished:
            return "Stopped before both runs finished: nothing to compare yet."
        t, s = self.transfer.test.accuracy, self.scratch.test.accuracy
        side, _, why = self.verdict()
        title = {"transfer": "**Transfer helps here**", "scratch": "**Here transfer does not help: scratch does "
                 "better**", "even": "**About the same either way**"}[side]
        arms = (f"{self.setup.per_class:g} images per class; from {self.source}, {self.setup.transfer_trains} "
                f"trains; from scratch, every layer trains")
        return (f"{title} ({arms}): **{t:.1%}** vs **{s:.1%}** on the test split ({100 * (t - s):+.1f} points). "
                f"Why: {why} {self.head_start().words(self.source)}{self.setup.distance_words()} (One seed each: a point or two can be "
                f"chance; the data-efficiency curve runs several.)" + (f" {self.budget.sentence()}" if self.budget else ""))

    def sentence(self) -> str:
        """The result in one sentence (the study's last progress event)."""
        if not self.finished:
            return "Stopped before both runs finished."
        t, s = self.transfer.test.accuracy, self.scratch.test.accuracy
        who = {"transfer": f"from {self.source} wins", "scratch": "from scratch wins",
               "even": "about the same"}[self.verdict()[0]]
        return f"{who}: {t:.1%} vs {s:.1%} on the test split at {self.setup.per_class:g} images per class."

    def to_dict(self) -> dict:
        out = {"source": self.source, "transfer": self.transfer.summary(),
               "scratch": self.scratch.summary() if self.scratch is not None else None,
               "setup": self.setup.to_dict(), "summary": self.summary(),
               "budget_fit": self.budget.to_dict() if self.budget else None,
               "curves": {k: [e.val_accuracy for e in h] for k, h in self.histories().items()}}
        if self.finished:
            side, key, why = self.verdict()
            out.update(head_start=self.head_start().to_dict(), ahead=side, cause={"key": key, "sentence": why},
                       gap=self.transfer.test.accuracy - self.scratch.test.accuracy)
        return out


def transfer_vs_scratch(data: ImageData, *, backbone: str, weights: str, preset: str | None = "full",
                        frozen: list[str] | None = None, seed: int = 0, callbacks: Callable[[str], list] = lambda run: [],
                        out: Callable[[str], Path | None] = lambda run: None, stop: StopToken | None = None,
                        progress: Callable[[Progress], None] | None = None, measure_source: bool = True,
                        budget_s: float | None = None, **fixed) -> TransferVsScratch:
    """The chosen model (``weights`` and freezing; by default every layer fine-tunes, as scratch's
    do) against its architecture from random weights with every layer training; each with the
    settings suggested for it and this data (the same budget rule), ``fixed`` settings winning.

    For each run ("transfer", "scratch"), ``callbacks(run)`` gives its callbacks and ``out(run)``
    the folder it is saved in (None: not saved). ``progress`` hears "run k of 2, about M minutes
    left" as each run starts and the result in a sentence at the end. ``measure_source``: measure
    how well the source's features separate this data's classes (5-NN, against random weights).
    ``budget_s``: both runs at the image size (and epoch share) that fits it (:mod:`tlcore.studies.budget`).
    """
    if weights == "none":
        raise TLCoreError("Transfer vs scratch needs source weights (weights='none' given): choose ImageNet or a "
                          "saved run on the Model tab.")
    stop, n = stop or StopToken(), len(data.train)

    def configs(side: int | None = None, scale: float = 1.0) -> tuple[RunConfig, RunConfig]:
        at = {**fixed, **({"image_size": side} if side else {})}
        cfg = RunConfig(dataset=data.name, backbone=backbone, weights=weights,
                        preset=None if frozen is not None else preset, frozen=frozen, seed=seed, **at)
        chosen = {k: v for k, v in suggested_for(cfg, n, scale=scale).items() if k not in at}
        return dataclasses.replace(cfg, **chosen).validate(), strategy_config(
            "scratch", dataset=data.name, backbone=backbone, weights=weights, n_train=n, seed=seed, scale=scale, **at)
    fit = _duel_fit(data, configs, budget_s) if budget_s is not None and "image_size" not in fixed else None
    cfg, scfg = configs(fit.size, fit.scale) if fit else configs()
    setup = describe_setup(cfg, data, fit=source_fit(data, cfg) if measure_source else None)
    if measure_source:
        setup.shift = from_saved_source(data, backbone, weights, seed)
    clock = _duel_clock(cfg, scfg, data, setup, progress)
    transfer = _timed(clock, 0, lambda: train(cfg, data=data, callbacks=callbacks("transfer"), stop=stop,
                                              out=out("transfer")))
    scratch = None
    if transfer.status is not Status.STOPPED and not stop.requested:
        scratch = _timed(clock, 1, lambda: train(scfg, data=data, callbacks=callbacks("scratch"), stop=stop,
                                                 out=out("scratch")))
    result = TransferVsScratch(source_name(weights), transfer, scratch, setup, fit)
    clock.finish(result.sentence())
    return result


def _duel_fit(data: ImageData, configs: Callable[[int, float], tuple], budget_s: float) -> Fit:
    """The image size (and epoch share) whose estimate, from timed steps at that size, fits ``budget_s``."""
    cfg, _ = configs()

    def estimate(side: int, scale: float) -> float:
        cfg, scfg = configs(side, scale)
        return _duel_clock(cfg, scfg, data, describe_setup(cfg, data), lambda p: None).estimate()
    return fit_study(budget_s, data, cfg.backbone, cfg.weights, estimate)


def _timed(clock: Clock, i: int, run: Callable[[], RunResult]) -> RunResult:
    """Run ``i`` of the clock's plan, timed."""
    clock.begin(i)
    t = time.perf_counter()
    result = run()
    clock.end(i, time.perf_counter() - t)
    return result


def _duel_clock(cfg: RunConfig, scfg: RunConfig, data: ImageData, setup: Setup, sink) -> Clock:
    """The two runs' plan; timed steps of the model give the estimate before they start."""
    sizes = dict(n_train=len(data.train), n_val=len(data.val), n_test=len(data.test))
    kind = "linear-probe" if setup.body_frozen else "fine-tune"
    plan = [planned(f"from {source_name(cfg.weights)}", kind, cfg, **sizes),
            planned("from scratch", "scratch", scfg, **sizes)]
    if setup.body_frozen:  # its feature pass: every image read forward once
        plan[0].images += sum(sizes.values())
    speed = None
    if sink is not None:
        speed = measure_speed(cfg.backbone, num_classes=len(data.classes), image_size=cfg.image_size,
                              batch_size=scfg.batch_size, device=cfg.device)
    return Clock(plan, sink, speed)


def describe_setup(cfg: RunConfig, data: ImageData, *, fit: SourceFit | None = None) -> Setup:
    """What the transfer run of ``cfg`` trains, on how much data per class."""
    model = create_backbone(cfg.backbone, weights="none" if cfg.weights == "imagenet" else cfg.weights,
                            num_classes=len(data.classes))
    frozen = frozen_groups(model, preset=cfg.preset, frozen=cfg.frozen)
    all_frozen = body_frozen(frozen, model.group_names(), train_bn=cfg.train_bn)
    if all_frozen:
        trains = "only its new head (the body frozen)"
    elif not frozen:
        trains = "every layer"
    else:
        trains = f"{', '.join(g for g in model.group_names() if g not in frozen)} ({', '.join(frozen)} frozen)"
    return Setup(len(data.train) / max(1, len(data.classes)), trains, all_frozen, fit)


FIT_IMAGES = 500  # test images the source's fit is measured on (stratified): seconds, even for an ImageNet body


def source_fit(data: ImageData, cfg: RunConfig) -> SourceFit:
    """How well ``cfg``'s source body separates ``data``'s test classes (5-NN), against the same
    network with random weights (seeded as ``cfg``)."""
    images, labels = data.test.images, data.test.labels
    if len(labels) > FIT_IMAGES:
        idx = few_shot(labels, max(2, FIT_IMAGES // len(data.classes)), cfg.seed)
        images, labels = images[idx], labels[idx]
    y = labels.numpy()
    knn = []
    for weights in (cfg.weights, "none"):
        torch.manual_seed(cfg.seed)
        body = create_backbone(cfg.backbone, weights=weights, num_classes=len(data.classes), image_size=cfg.image_size)
        knn.append(knn_accuracy(features_of(body, images), y, seed=cfg.seed))
    return SourceFit(knn[0], knn[1], len(y))


def source_name(weights: str) -> str:
    """'ImageNet', or a saved run's folder name."""
    return "ImageNet" if weights == "imagenet" else Path(weights).name
