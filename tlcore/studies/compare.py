"""Does transfer help here? One recipe from the source weights and from random weights, side by side.

Three strategies use a source model (:data:`~tlcore.config.STRATEGIES`):

- ``scratch``: the source's architecture with random weights, every layer trained;
- ``linear-probe``: the source body frozen, a new head trained on its features;
- ``fine-tune``: the source body and a new head all trained (the body at a tenth of the rate).

Each gets what :mod:`tlcore.training.suggest` suggests for it and that much data, under the same
fair budget rule (:data:`tlcore.studies.curve.BUDGET_RULE`), so no arm is an undertrained straw
man. The data-efficiency curve over many shot counts is :mod:`tlcore.studies.curve`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import STRATEGIES, RunConfig
from ..data import ImageData
from ..errors import TLCoreError, verify_choice
from ..events import StopToken
from ..training.result import RunResult, Status
from ..training.suggest import suggested_for
from ..training.train import train


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
class TransferVsScratch:
    """One recipe from the source weights and from random weights, on the same data and seed."""

    source: str  # the source, as a user names it
    transfer: RunResult
    scratch: RunResult | None  # None if stopped before it ran

    def reach(self) -> tuple[float, int | None, int | None]:
        """(accuracy, epochs from the source, epochs from scratch): the first epoch each reached
        the lower of their best validation accuracies (the better run reaches it sooner)."""
        best = [max(e.val_accuracy for e in r.history) for r in (self.transfer, self.scratch)]
        target = min(best)
        first = [next((e.epoch for e in r.history if e.val_accuracy >= target), None)
                 for r in (self.transfer, self.scratch)]
        return target, first[0], first[1]

    def summary(self) -> str:
        """The answer in plain words; honest when transfer does not help."""
        t, s = self.transfer, self.scratch
        if s is None or t.test is None or s.test is None:
            return "Stopped before both runs finished: nothing to compare yet."
        gap = t.test.accuracy - s.test.accuracy
        target, et, es = self.reach()
        scores = (f"from {self.source}: **{t.test.accuracy:.1%}** on the test split; from scratch: "
                  f"**{s.test.accuracy:.1%}** ({100 * gap:+.1f} points).")
        speed = (f" To reach {target:.1%} validation accuracy: {et} epoch{'s' * (et != 1)} from {self.source}, "
                 f"{es} from scratch.") if et and es else ""
        if gap >= 0.01:
            verdict = "**Transfer helps here**"
        elif gap <= -0.01:
            verdict = ("**Here transfer does not help: scratch does better.** A source far from the target can "
                       "hurt: its features suit its own task, not this one. That is a lesson too")
        else:
            verdict = "**About the same either way**"
        return (f"{verdict}: {scores}{speed} (One seed each: a point or two can be chance; the "
                f"data-efficiency curve runs several.)")

    def to_dict(self) -> dict:
        target, et, es = self.reach() if self.scratch is not None else (None, None, None)
        return {"source": self.source, "transfer": self.transfer.summary(),
                "scratch": self.scratch.summary() if self.scratch is not None else None,
                "reach": {"val_accuracy": target, "transfer_epochs": et, "scratch_epochs": es},
                "summary": self.summary()}


def transfer_vs_scratch(data: ImageData, *, backbone: str, weights: str, preset: str | None = "full",
                        frozen: list[str] | None = None, seed: int = 0, callbacks: Callable[[str], list] = lambda run: [],
                        out: Callable[[str], Path | None] = lambda run: None, stop: StopToken | None = None,
                        **fixed) -> TransferVsScratch:
    """The chosen model (``weights`` and freezing) against its architecture from random weights
    with every layer training; each with the settings suggested for it and this data (the same
    budget rule). For each run ("transfer", "scratch"), ``callbacks(run)`` gives its callbacks and
    ``out(run)`` the folder it is saved in (None: not saved)."""
    if weights == "none":
        raise TLCoreError("Transfer vs scratch needs source weights: choose ImageNet or a saved run on the Model tab.")
    stop = stop or StopToken()
    n = len(data.train)
    cfg = RunConfig(dataset=data.name, backbone=backbone, weights=weights, preset=None if frozen is not None else preset,
                    frozen=frozen, seed=seed, **fixed)
    cfg = dataclasses.replace(cfg, **suggested_for(cfg, n)).validate()
    transfer = train(cfg, data=data, callbacks=callbacks("transfer"), stop=stop, out=out("transfer"))
    scratch = None
    if transfer.status is not Status.STOPPED and not stop.requested:
        scfg = strategy_config("scratch", dataset=data.name, backbone=backbone, weights=weights, n_train=n, seed=seed,
                               **fixed)
        scratch = train(scfg, data=data, callbacks=callbacks("scratch"), stop=stop, out=out("scratch"))
    return TransferVsScratch(source_name(weights), transfer, scratch)


def source_name(weights: str) -> str:
    """'ImageNet', or a saved run's folder name."""
    return "ImageNet" if weights == "imagenet" else Path(weights).name
