"""The data-efficiency curve: test accuracy against samples per class, for each strategy, over seeds.

Every run gets the settings :func:`tlcore.studies.compare.strategy_config` gives its strategy
and data size (one fair budget rule). The linear probes of a curve share one pass of the source
body over the images: each probe then trains a head on rows of that cache.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..config import STRATEGIES, RunConfig
from ..data import ImageData
from ..data.base import few_shot
from ..data.loader import TensorLoader
from ..device import autocast, autocast_dtype, pick_device
from ..errors import TLCoreError, verify_choice
from ..events import StopToken
from ..insight.evaluate import Evaluation, evaluate_probs
from ..models import create_backbone, freeze
from ..training.feature_cache import compute_features
from ..training.callbacks import fit_callbacks
from ..training.loop import Trainer
from ..training.meters import best_epoch
from ..training.objective import Objective
from ..training.optim import build_optimizer
from ..training.result import Status
from ..training.step import Step
from ..training.suggest import MIN_STEPS, suggested_for
from ..training.train import train
from . import verdict
from .compare import strategy_config
from .budget import Fit, fit_study, sized_validation
from .progress import Clock, Progress, measure_speed, planned
from ..training.semi import STRATEGY as SEMI
from ..training.semi import PseudoLabels, balanced, pseudo_label

# SEMI, the linear probe plus the rest of the training split without its labels (tlcore.training.semi),
# is a curve's strategy, not a way to train one model, so not among config.STRATEGIES.
CURVE_STRATEGIES = (*STRATEGIES, SEMI)

DEFAULT_SHOTS = (1, 2, 5, 10, 20, 50, None)  # samples per class; None: every training image
BUDGET_RULE = (f"Every run: the settings suggested for its strategy and data size, at least {MIN_STEPS} updates "
               f"(small data: smaller batches, more epochs), early stopping on validation loss, the best epoch kept.")


def parse_shots(text: str) -> list[int | None]:
    """"1, 5, 20" or "1,5,all" -> [1, 5, 20] / [1, 5, None] (None: every training image)."""
    out = []
    for part in (p.strip() for p in str(text).split(",") if p.strip()):
        if part == "all":
            out.append(None)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise TLCoreError(f"Samples per class are whole numbers >= 1 or 'all', comma-separated; got {part!r}.")
    return out


def shots_of(data: ImageData, shots: int | None, seed: int) -> ImageData:
    """``data`` with ``shots`` training images per class (all with None), chosen with ``seed``.

    Stratified, and nested: for one seed, the 5-shot set holds the 2-shot set. Validation and
    test stay whole, so every point is judged on the same images.
    """
    if shots is None:
        return data
    idx = few_shot(data.train.labels, shots, seed)
    return dataclasses.replace(data, train=data.train.subset(idx))


@dataclass
class Point:
    """One run of a curve."""

    strategy: str
    shots: int | None
    seed: int
    accuracy: float  # on the test split
    seconds: float
    epochs: int  # trained (early stopping may end before the budget's)
    n_train: int
    pseudo_label_accuracy: float | None = None  # semi-supervised: share of its pseudo-labels that are right
    unlabelled_used: int | None = None  # semi-supervised: pool images it gave a label and trained on


@dataclass
class Curve:
    """Test accuracy against samples per class, for each strategy, over seeds."""

    dataset: str
    backbone: str
    weights: str
    n_classes: int
    points: list[Point] = field(default_factory=list)
    stopped: bool = False
    feature_pass_seconds: float = 0.0  # the linear probes' one pass over the images
    semi_method: str = "label-spreading"  # how semi-supervised points labelled the unlabelled images
    budget: Fit | None = None  # what a time budget chose (image size, epoch share), with its estimates
    validation: dict = field(default_factory=dict)  # the validation images the runs used, of how many

    def results(self) -> list[dict]:
        """Mean and spread over seeds, per strategy and shot count, in the order they ran."""
        groups: dict[tuple, list[Point]] = {}
        for p in self.points:
            groups.setdefault((p.shots, p.strategy), []).append(p)
        return [{"shots": shots, "strategy": strategy, "accuracy": statistics.fmean(p.accuracy for p in ps),
                 "std": statistics.stdev([p.accuracy for p in ps]) if len(ps) > 1 else 0.0,
                 "seconds": statistics.fmean(p.seconds for p in ps), "seeds": len(ps),
                 "n_train": ps[0].n_train, **_semi_means(ps)} for (shots, strategy), ps in groups.items()]

    def sentence(self) -> str:
        """Who leads at which samples per class and where the lines cross, from the mean accuracies."""
        results = self.results()
        said = " ".join(filter(None, (verdict.curve_sentence(results), verdict.semi_sentence(results, self.semi_method))))
        said = f"Stopped after {len(self.points)} runs. {said}" if self.stopped else said
        return " ".join(filter(None, (self.budget.sentence() if self.budget else "", said, self._validation_words())))

    def _validation_words(self) -> str:
        v = self.validation
        if not v or v["images"] == v["of"]:
            return ""
        return (f"Each run picked its epoch on {v['images']:,} of the {v['of']:,} validation images "
                f"({v['per_class']} a class: enough to choose an epoch, and each epoch reads them all).")

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "backbone": self.backbone, "weights": self.weights,
                "classes": self.n_classes, "budget": BUDGET_RULE,
                "stopped": self.stopped, "feature_pass_seconds": round(self.feature_pass_seconds, 2),
                "budget_fit": self.budget.to_dict() if self.budget else None, "validation": dict(self.validation),
                **({"semi_supervised": self.semi_method} if any(p.strategy == SEMI for p in self.points) else {}),
                "results": self.results(), "points": [dataclasses.asdict(p) for p in self.points],
                "sentence": self.sentence()}


def _semi_means(ps: list[Point]) -> dict:
    """The semi-supervised fields of a row, averaged over seeds (none for other strategies)."""
    if ps[0].strategy != SEMI:
        return {}
    right = [p.pseudo_label_accuracy for p in ps if p.pseudo_label_accuracy is not None]
    return {"pseudo_label_accuracy": statistics.fmean(right) if right else None,
            "unlabelled_used": round(statistics.fmean(p.unlabelled_used or 0 for p in ps))}


class ProbeCache:
    """The source body's features of every image, computed once; each probe trains a head on rows of it.

    A probe is the same run as ``train`` with a frozen body makes (same loaders, optimizer,
    schedule, objective and validation), only without computing the features again.
    """

    def __init__(self, data: ImageData, cfg: RunConfig, *, stop: StopToken, rows: torch.Tensor | None = None):
        """``rows``: the training images any probe will use (sorted indices; None: all of them)."""
        t = time.perf_counter()
        self.device = pick_device(cfg.device)
        self.amp = autocast_dtype(self.device, cfg.precision)
        torch.manual_seed(cfg.seed)
        self.model = freeze(create_backbone(cfg.backbone, weights=cfg.weights, num_classes=len(data.classes),
                                            image_size=cfg.image_size), preset="linear-probe")
        self.model = self.model.to(self.device).to(memory_format=torch.channels_last)
        self.rows = rows
        self.features = {}
        for name, split in data.splits.items():
            images = split.images if name != "train" or rows is None else split.images[rows]
            f = compute_features(self.model, images, self.device, batch_size=256, amp=self.amp, stop=stop)
            if f is None:
                raise _Stopped()
            self.features[name] = f
        self.data, self.seconds = data, time.perf_counter() - t

    def probe(self, cfg: RunConfig, train_idx: torch.Tensor | None, stop: StopToken,
              pseudo: PseudoLabels | None = None) -> "ProbeRun":
        """A head on ``cfg``'s settings, trained on the cached rows ``train_idx`` (all with None)
        and, with ``pseudo`` (from :meth:`pseudo_labels`), the training rows it labelled, under those labels."""
        head = torch.nn.Linear(self.model.num_features, len(self.data.classes)).to(self.device)
        torch.nn.init.zeros_(head.weight), torch.nn.init.zeros_(head.bias)  # as a pretrained body's new head
        self.model.head = head  # the frozen body is shared; the head is this probe's
        if train_idx is None:
            rows, labels = slice(None), self.data.train.labels
            assert self.rows is None, "a probe on every image needs every image's features"
        else:  # where those images sit among the cached rows
            rows = train_idx if self.rows is None else torch.searchsorted(self.rows, train_idx)
            rows, labels = rows.to(self.device), self.data.train.labels[train_idx]
        inputs = self.features["train"][rows]
        if pseudo is not None and pseudo.used:  # evened out by class, as a semi-supervised run is (tlcore.training.semi)
            inputs = torch.cat([inputs, self.features["train"][pseudo.index.to(self.device)]])
            labels = torch.cat([labels, pseudo.labels])
            rows = balanced(labels, cfg.seed)
            inputs, labels = inputs[rows.to(self.device)], labels[rows]
        bs = min(cfg.batch_size, len(labels))
        loader = TensorLoader(inputs, labels, batch_size=bs, shuffle=True, device=self.device, seed=cfg.seed)
        val = TensorLoader(self.features["val"], self.data.val.labels, batch_size=512, device=self.device)
        opt, sched = build_optimizer(self.model, cfg, len(loader))
        trainer = Trainer(epochs=cfg.epochs, stop=stop, callbacks=fit_callbacks(lr=cfg.lr, patience=cfg.early_stopping))
        trainer.assemble(head, Step(head, opt, sched, Objective(cfg.label_smoothing), amp=self.amp, device=self.device),
                         loader, val)
        trainer.fit()  # the head ends with its best epoch's weights (KeepBest)
        test = self._test(trainer, head)
        return ProbeRun(head.cpu(), trainer.status, trainer.history, best_epoch(trainer.history), test)

    def pool(self, train_idx: torch.Tensor) -> torch.Tensor:
        """The training images outside ``train_idx``: the unlabelled pool (every row is cached)."""
        assert self.rows is None, "the unlabelled pool needs every training image's features"
        outside = torch.ones(len(self.data.train), dtype=torch.bool)
        outside[train_idx] = False
        return torch.nonzero(outside).flatten()

    def pseudo_labels(self, method: str, train_idx: torch.Tensor, seed: int) -> PseudoLabels:
        """``method``'s labels for the pool, from the labelled rows ``train_idx`` alone (the pool's
        own labels are not read here); its ``index`` holds training rows."""
        feats, pool = self.features["train"], self.pool(train_idx)
        p = pseudo_label(method, feats[train_idx.to(self.device)], self.data.train.labels[train_idx],
                         feats[pool.to(self.device)], len(self.data.classes), seed=seed)
        return dataclasses.replace(p, index=pool[p.index])

    @torch.no_grad()
    def _test(self, trainer: Trainer, head: torch.nn.Linear) -> Evaluation | None:
        if trainer.status is Status.STOPPED:
            return None
        with autocast(self.device, self.amp):
            probs = head.eval()(self.features["test"]).float().softmax(1).cpu()
        return evaluate_probs(self.data.test.labels.numpy(), probs.numpy(), self.data.classes)


@dataclass
class ProbeRun:
    """What a probe on the cache ends with (the fields of a RunResult that a probe has)."""

    head: torch.nn.Linear  # the best epoch's, on the CPU
    status: Status
    history: list
    best_epoch: int
    test: Evaluation | None


class _Stopped(Exception):
    pass


def curve(data: ImageData, *, backbone: str, weights: str, shots: Sequence[int | None] = DEFAULT_SHOTS,
          seeds: int = 3, strategies: Sequence[str] = STRATEGIES, sink: Callable[[Point], None] | None = None,
          stop: StopToken | None = None, progress: Callable[[Progress], None] | None = None,
          semi_method: str = "label-spreading", budget_s: float | None = None, **fixed) -> Curve:
    """Test accuracy against samples per class for each strategy, ``seeds`` runs per point.

    Points stream to ``sink`` as they finish; a stop ends the curve keeping every finished
    point (``curve.stopped``). ``progress`` hears "run k of N, about M minutes left" as each run
    starts (the first estimate from a few timed steps, then from the runs' own times) and the
    result in one sentence at the end (:meth:`Curve.sentence`). ``fixed`` RunConfig settings
    (``image_size``, ``precision``...) apply to every run. ``semi-supervised`` points use
    ``semi_method`` (:data:`tlcore.training.semi.METHODS`) on the rest of the training split.
    With ``budget_s`` (and no fixed ``image_size``), every run takes the image size, and if need
    be the share of its epochs, that :func:`tlcore.studies.budget.fit_budget` finds to fit.
    Validation is sized to the task (:func:`sized_validation`), and said.
    """
    check_curve(shots, seeds, strategies, weights)
    stop, out = stop or StopToken(), Curve(data.name, backbone, weights, len(data.classes), semi_method=semi_method)
    data, out.validation = sized_validation(data)
    common, scale = dict(dataset=data.name, backbone=backbone, weights=weights, **fixed), 1.0
    if budget_s is not None and "image_size" not in fixed:
        out.budget = _fit(data, shots, seeds, strategies, common, budget_s)
        common["image_size"], scale = out.budget.size, out.budget.scale
    todo = curve_plan(data, shots, seeds, strategies, common, scale)
    clock = _clock(todo, data, common, progress, _rows(data, shots, seeds, strategies))
    try:
        cache = None
        if {"linear-probe", SEMI} & set(strategies):  # the semi-supervised pool is the rest: every row
            cache = ProbeCache(data, strategy_config("linear-probe", n_train=len(data.train), **common), stop=stop,
                               rows=_rows(data, shots, seeds, strategies))
            out.feature_pass_seconds = cache.seconds
        for i, (strategy, k, seed, cfg) in enumerate(todo):
            clock.begin(i)
            point = _point(data, strategy, k, seed, cfg, cache, stop, semi_method)
            clock.end(i, point.seconds)
            out.points.append(point)
            if sink:
                sink(point)
    except _Stopped:
        out.stopped = True
    clock.finish(out.sentence())
    return out


def transfer_gain(data: ImageData, *, backbone: str, weights: str, shots: int, seeds: int = 3,
                  stop: StopToken | None = None) -> tuple[float, float]:
    """Mean test accuracies (linear probe on ``weights``' body, scratch) at ``shots`` per class."""
    got = curve(data, backbone=backbone, weights=weights, shots=[shots], seeds=seeds,
                strategies=["linear-probe", "scratch"], stop=stop)
    if got.stopped:
        raise TLCoreError("Stopped while measuring the transfer's gain.")
    acc = {r["strategy"]: r["accuracy"] for r in got.results()}
    return acc["linear-probe"], acc["scratch"]


def _fit(data: ImageData, shots, seeds: int, strategies, common: dict, budget_s: float) -> Fit:
    """The image size (and epoch share) whose estimate, from timed steps at that size, fits ``budget_s``."""
    rows = _rows(data, shots, seeds, strategies)

    def estimate(side: int, scale: float) -> float:
        at = {**common, "image_size": side}
        todo = curve_plan(data, shots, seeds, strategies, at, scale)
        return _clock(todo, data, at, lambda p: None, rows).estimate()
    return fit_study(budget_s, data, common["backbone"], common["weights"], estimate)


def curve_plan(data: ImageData, shots, seeds: int, strategies, common: dict, scale: float = 1.0) -> list[tuple]:
    """``(strategy, shots, seed, RunConfig)`` of every run of a curve, in the order they run; each
    with the suggested settings at ``scale`` times the suggested budget (a study's budget)."""
    todo = []
    for k in sorted(shots, key=lambda s: float("inf") if s is None else s):
        n = len(data.train) if k is None else len(few_shot(data.train.labels, k, 0))
        for seed in range(seeds):
            for strategy in strategies:
                if strategy == SEMI and k is None:  # every label known: no image is left without one
                    continue
                arm = "linear-probe" if strategy == SEMI else strategy  # the same head, on more rows
                todo.append((strategy, k, seed, strategy_config(arm, n_train=n, seed=seed, scale=scale, **common)))
    return todo


def _clock(todo: list[tuple], data: ImageData, common: dict, sink, rows: torch.Tensor | None) -> Clock:
    """The curve's plan; a few timed steps give its length before it starts (only when watched).
    ``rows``: the training images the probes' feature pass reads (None: all)."""
    plan = []
    px = f", {common['image_size']} px" if common.get("image_size") else ""
    for strategy, k, seed, cfg in todo:
        n = len(data.train) if k is None else len(few_shot(data.train.labels, k, seed))
        plan.append(planned(f"{strategy}, {k or 'all'} per class, seed {seed}{px}",
                            "linear-probe" if strategy == SEMI else strategy, cfg, n_train=n,
                            n_val=len(data.val), n_test=len(data.test)))
    probes = any(s in ("linear-probe", SEMI) for s, *_ in todo)
    read = (len(data.train) if rows is None else len(rows)) + len(data.val) + len(data.test)
    speed = None
    if sink is not None:
        speed = measure_speed(common["backbone"], num_classes=len(data.classes), image_size=common.get("image_size"),
                              batch_size=todo[0][3].batch_size, device=common.get("device", "auto"))
    return Clock(plan, sink, speed, setup_images=read if probes else 0)


def _rows(data: ImageData, shots, seeds: int, strategies=()) -> torch.Tensor | None:
    """The training images some point of the curve uses (None: all, when "all" is a point, or
    the semi-supervised strategy's pool is the rest)."""
    if None in shots or SEMI in strategies:
        return None
    picked = [few_shot(data.train.labels, k, seed) for k in shots for seed in range(seeds)]
    return torch.unique(torch.cat(picked))  # sorted


def check_curve(shots, seeds, strategies, weights) -> None:
    """A TLCoreError naming the first thing wrong with a curve's request."""
    for s in strategies:
        verify_choice(s, "strategy", CURVE_STRATEGIES)
    if not strategies or not shots:
        raise TLCoreError("A curve needs at least one strategy and one shot count.")
    if set(strategies) == {SEMI} and set(shots) == {None}:
        raise TLCoreError("With every training image labelled ('all'), none is left unlabelled: give semi-supervised "
                          "a number of samples per class too.")
    if any(s is not None and (not isinstance(s, int) or s < 1) for s in shots):
        raise TLCoreError(f"Shots are whole numbers >= 1 (or 'all'), got {list(shots)!r}.")
    if not isinstance(seeds, int) or not 1 <= seeds <= 10:
        raise TLCoreError(f"seeds must be a whole number from 1 to 10, got {seeds!r}.")
    if weights == "none" and set(strategies) - {"scratch"}:
        raise TLCoreError("The linear probe, the fine-tune and semi-supervised start from a source model: "
                          "choose weights other than 'none'.")


def _point(data: ImageData, strategy: str, k: int | None, seed: int, cfg: RunConfig, cache: ProbeCache | None,
           stop: StopToken, semi_method: str = "label-spreading") -> Point:
    if stop.requested:
        raise _Stopped()
    subset = shots_of(data, k, seed)
    t = time.perf_counter()
    pseudo = None
    if strategy in ("linear-probe", SEMI):
        idx = None if k is None else few_shot(data.train.labels, k, seed)
        if strategy == SEMI and idx is not None:
            pseudo = cache.pseudo_labels(semi_method, idx, seed)
            # The budget of the images it trains on: its labelled ones and the pool's it labelled.
            cfg = dataclasses.replace(cfg, **suggested_for(cfg, len(idx) + pseudo.used)).validate()
        r = cache.probe(cfg, idx, stop, pseudo)
    else:
        r = train(cfg, data=subset, stop=stop)
    if r.status is Status.STOPPED or r.test is None:
        raise _Stopped()
    point = Point(strategy, k, seed, r.test.accuracy, time.perf_counter() - t, len(r.history), len(subset.train))
    if strategy == SEMI:  # the pool's true labels, read only now, to score its pseudo-labels
        right = pseudo.accuracy(data.train.labels) if pseudo is not None else None
        point.pseudo_label_accuracy, point.unlabelled_used = right, pseudo.used if pseudo is not None else 0
    return point
