"""Where a study of many runs is: "run k of N, about M minutes left".

A study knows its plan before it starts: each run's planned updates (its suggested epochs times
its steps) and the images it only reads forward (validation every epoch, the probes' one
feature pass). A few timed steps of the model (:func:`measure_speed`, well under a second for
LeNet-5) turn the plan into an estimate before anything trains; once runs finish, their own
times correct it, per kind of run (a fine-tune's step and a probe's cost differ a thousandfold),
so the minutes left come from this machine's real pace, early stopping and all.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..device import pick_device
from ..models import create_backbone

TIMED_STEPS = 5  # after 2 untimed ones: enough to see the pace, short enough to be free
FORWARD_BATCH = 64  # images in the timed forward pass


@dataclass
class Planned:
    """One run of a study, as planned."""

    label: str  # "fine-tune, 5 per class, seed 0"
    kind: str  # runs of one kind share a pace: "scratch", "fine-tune", "linear-probe"
    updates: int  # planned optimizer steps (early stopping may end sooner)
    images: int  # planned forward-only images (validation each epoch, testing)


@dataclass
class Progress:
    """Fired as each run of a study starts, and once at the end (``done``)."""

    run: int  # 1-based: the run about to start (the last one when done)
    runs: int
    label: str  # what that run is
    elapsed_s: float
    left_s: float | None  # estimated; None when nothing can be estimated yet
    done: bool = False
    sentence: str = ""  # at the end: the study's result in one sentence

    @property
    def text(self) -> str:
        """"run 3 of 14 (scratch, 5 per class), about 2 minutes left"."""
        if self.done:
            runs = f"{self.runs} run{'s' * (self.runs != 1)}" if self.run == self.runs else \
                f"{self.run} of {self.runs} runs"
            return f"{runs} done in {_duration(self.elapsed_s)}. {self.sentence}".strip()
        left = f", about {_duration(self.left_s)} left" if self.left_s is not None else ""
        return f"run {self.run} of {self.runs} ({self.label}){left}"


def _duration(seconds: float) -> str:
    """"1 second", "40 seconds" (to 5 from 10 on), "2 minutes" (from 90 seconds on)."""
    if seconds >= 90:
        return f"{round(seconds / 60)} minutes"
    n = max(1, round(seconds / 5) * 5 if seconds >= 10 else round(seconds))
    return f"{n} second{'s' * (n != 1)}"


@dataclass
class Speed:
    """Seconds an update takes, per kind of run, and seconds per image read forward only."""

    step_s: dict[str, float]
    forward_s: float

    def seconds(self, p: Planned) -> float:
        return p.updates * self.step_s.get(p.kind, max(self.step_s.values(), default=0.0)) + p.images * self.forward_s


def measure_speed(backbone: str, *, num_classes: int, image_size: int | None, batch_size: int,
                  device: str = "auto", whole: bool = True) -> Speed:
    """A few timed steps of ``backbone`` on random inputs: a whole-network update (unless not
    ``whole``: a probe on cached features never takes one), a head-only update, and a forward
    pass, on the device training will use."""
    dev = pick_device(device)
    model = create_backbone(backbone, weights="none", num_classes=num_classes, image_size=image_size).to(dev)
    x = torch.randn(batch_size, model.spec.channels, model.spec.size, model.spec.size, device=dev)
    y = torch.randint(0, num_classes, (batch_size,), device=dev)
    steps = dict.fromkeys(("scratch", "fine-tune"), _time_steps(model, x, y)) if whole else {}
    feats = torch.randn(batch_size, model.num_features, device=dev)
    head = _time_steps(torch.nn.Linear(model.num_features, num_classes).to(dev), feats, y)
    # Validation and feature passes read big batches: a small one would time the overhead, not the images.
    # Laid out as the pass lays them (channels_last), and timed on the second big batch: the first
    # maps its memory and plans (it took 2.2x the pass's pace at 224 px on a 2-core CPU).
    big = torch.randn(FORWARD_BATCH, *x.shape[1:], device=dev).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model.eval()(big)
        t = _now(dev)
        model(big)
        forward = (_now(dev) - t) / FORWARD_BATCH
    return Speed({**steps, "linear-probe": head}, forward)


def _time_steps(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()
    for i in range(2 + TIMED_STEPS):
        if i == 2:  # the first steps allocate and plan: not the pace
            t = _now(x.device)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return (_now(x.device) - t) / TIMED_STEPS


def _now(device: torch.device) -> float:
    """The time once the device has done what it was given (CUDA runs ahead of Python)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


@dataclass
class Clock:
    """A study's plan and the times of its finished runs: the minutes left, as each run starts.

    ``speed`` (from :func:`measure_speed`) gives the estimate before any run finished; each
    finished run then scales the prediction for its kind by how long it really took (early
    stopping, validation, augmentation and a busy machine included). ``setup`` is planned work
    before the first run (images read forward once, e.g. the probes' feature pass).
    """

    plan: list[Planned]
    sink: Callable[[Progress], None] | None = None
    speed: Speed | None = None
    setup_images: int = 0
    start: float = field(default_factory=time.perf_counter)
    took: dict[int, float] = field(default_factory=dict)  # run index -> seconds

    def estimate(self) -> float | None:
        """Seconds the whole study should take, before it starts (None without a speed)."""
        if self.speed is None:
            return None
        return self.setup_images * self.speed.forward_s + sum(self.speed.seconds(p) for p in self.plan)

    def left(self, first: int) -> float | None:
        """Seconds the runs from index ``first`` on should take (None: nothing to go by yet)."""
        predicted = [self.predict(p) for p in self.plan[first:]]
        return None if None in predicted else sum(predicted)

    def predict(self, p: Planned) -> float | None:
        """``p``'s seconds: the speed's guess (or its updates), scaled by how the finished runs of its
        kind (of any kind, before one of its own finished) compared with their own guesses."""
        done = [(self.plan[i], s) for i, s in self.took.items()]
        same = [(q, s) for q, s in done if q.kind == p.kind] or done
        guess = self.speed.seconds if self.speed is not None else (lambda q: float(q.updates))
        if not same:
            return guess(p) if self.speed is not None else None
        planned = sum(guess(q) for q, _ in same)
        return guess(p) * sum(s for _, s in same) / planned if planned > 0 else None

    def begin(self, i: int) -> None:
        """Run ``i`` (0-based) starts."""
        self._fire(Progress(i + 1, len(self.plan), self.plan[i].label, self.elapsed(), self.left(i)))

    def end(self, i: int, seconds: float) -> None:
        """Run ``i`` took ``seconds``."""
        self.took[i] = seconds

    def finish(self, sentence: str) -> None:
        """The study is over: its result in one sentence."""
        self._fire(Progress(len(self.took), len(self.plan), "", self.elapsed(), 0.0, done=True, sentence=sentence))

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _fire(self, event: Progress) -> None:
        if self.sink is not None:
            self.sink(event)


def planned(label: str, kind: str, cfg, *, n_train: int, n_val: int, n_test: int) -> Planned:
    """The plan of one run of RunConfig ``cfg`` on ``n_train`` images, validated on ``n_val`` every
    epoch and tested on ``n_test`` (a probe reads cached features: those passes are nearly free)."""
    steps = max(1, math.ceil(n_train / max(1, cfg.batch_size)))
    probe = kind == "linear-probe"
    return Planned(label, kind, cfg.epochs * steps, 0 if probe else cfg.epochs * n_val + n_test)
