"""The trainer: a run is set up, fitted epoch by epoch, then finished (Lightning's split).

- ``setup``: data, the model built (or copied) and frozen on its device, the loaders (with the
  frozen body's features cached when nothing in it learns), and the :class:`~tlcore.step.Step`
  (optimizer, schedule, loss scaler, objective).
- ``fit``: epochs of steps, validation after each; the best validation loss keeps its weights
  and drives early stopping. A stop is honoured within one step; a NaN loss or running out of
  GPU memory ends the run with a plain message; a time budget pauses it at an epoch boundary.
- ``finish``: the kept weights on the CPU, the test split evaluated through the one path that
  ``evaluate`` uses too, the run saved.

Hooks receive the trainer, and only the main process of a distributed run fires them or saves.
Everything a paused run needs is in :meth:`Trainer.state_dict`.
"""
from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F

from .checkpoints import save_replay, save_run
from .config import RunConfig
from .data import Augment, BatchLoader, ImageData, load_dataset
from .data.loader import TensorLoader
from .device import (PRECISION_NAMES, autocast, autocast_dtype, describe_device, is_main_process, pick_device,
                     to_cpu)
from .errors import TLCoreError
from .evaluate import Evaluation, evaluate
from .events import Callback, EpochEvent, RunEnd, RunInfo, StepEvent, StopRequested, StopToken
from .features import compute_features
from .models import TransferNet, create_backbone, freeze
from .objective import Objective
from .optim import build_optimizer
from .result import RunResult, Status
from .state import LoopState
from .step import Step

STEP_INTERVAL_S = Callback.step_interval_s


def load_run_data(cfg: RunConfig) -> ImageData:
    """The dataset as ``cfg`` names it, split as ``cfg`` says."""
    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed, val_fraction=cfg.val_fraction,
                        samples_per_class=cfg.samples_per_class)


class Diverged(Exception):
    """The loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int):
        self.epoch, self.step = epoch, step


class BestEpoch:
    """The best validation loss so far and its weights (on the CPU), and the epochs since it."""

    def __init__(self, patience: int = 0):
        self.patience = patience  # early stopping after this many epochs without a better loss; 0 = never
        self.loss, self.weights, self.epoch, self.bad_epochs = math.inf, None, 0, 0

    def update(self, epoch: int, val_loss: float, model: torch.nn.Module) -> bool:
        """Record an epoch's validation loss; True (and its weights kept) if it is the best."""
        if val_loss < self.loss:
            self.loss, self.bad_epochs, self.epoch = val_loss, 0, epoch
            self.weights = to_cpu(model.state_dict())
            return True
        self.bad_epochs += 1
        return False

    @property
    def patience_spent(self) -> bool:
        return bool(self.patience) and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"loss": self.loss, "weights": self.weights, "epoch": self.epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.loss, self.weights = state["loss"], state["weights"]
        self.epoch, self.bad_epochs = state["epoch"], state["bad_epochs"]


class Clock:
    """Images trained on and seconds spent training, across the calls of a paused run."""

    def __init__(self):
        self.seen, self.before, self.start = 0, 0.0, time.perf_counter()

    def restart(self) -> None:
        self.start = time.perf_counter() - self.before

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def rate(self, now: float | None = None) -> float:
        return self.seen / max((now or time.perf_counter()) - self.start, 1e-9)

    def state_dict(self) -> dict:
        return {"seen": self.seen, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.seen, self.before = state["seen"], state["seconds"]


class EpochMeter:
    """Training loss and accuracy of the epoch so far, summed on the device (no sync per step)."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.n = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss += loss * len(y)
        self.correct += (logits.argmax(1) == y).sum()
        self.n += len(y)

    def read(self) -> tuple[float, float]:
        """(mean loss, accuracy): a CPU-GPU sync point."""
        return self.loss.item() / max(self.n, 1), self.correct.item() / max(self.n, 1)


class Trainer:
    """One run of ``cfg``. ``train()`` is ``setup``, ``fit`` and ``finish``; a custom
    ``objective`` (regularizer terms, another criterion) goes in here."""

    def __init__(self, cfg: RunConfig, *, callbacks: list[Callback] = (), stop: StopToken | None = None,
                 objective: Objective | None = None):
        self.cfg = cfg.validate()
        self.callbacks, self.stop = list(callbacks), stop or StopToken()
        self.objective = objective or Objective(cfg.label_smoothing)
        self.is_main = is_main_process()
        self.step_interval_s = min([cb.step_interval_s for cb in self.callbacks] or [STEP_INTERVAL_S])
        self.status, self.message = Status.STOPPED, "Stopped before training began."
        self.t_start = time.perf_counter()
        self.data: ImageData | None = None
        self.model: TransferNet | None = None
        self.net = self.step = self.loader = self.val_loader = None  # net: what a batch goes through
        self.cached = self.augment = False
        self.history: list[EpochEvent] = []
        self.epochs_done = 0
        self.best, self.clock = BestEpoch(cfg.early_stopping), Clock()

    def fire(self, hook: str, *args) -> None:
        if self.is_main:
            for cb in self.callbacks:
                getattr(cb, hook)(self, *args)

    # -- set up ---------------------------------------------------------------------------------
    def setup(self, data: ImageData | None = None, *, start: TransferNet | None = None,
              resume: LoopState | None = None) -> bool:
        """Data, model, loaders, step; the paused state if resuming. False if a stop came first."""
        torch.manual_seed(self.cfg.seed)
        # Loading: data, model, freezing. Errors here are the user's (bad names, missing files).
        self.fire("on_phase", "loading")
        self.data = data if data is not None else load_run_data(self.cfg)
        self.device = pick_device(self.cfg.device)
        self.amp = autocast_dtype(self.device, self.cfg.precision)
        # channels_last: faster convolutions on CUDA and on CPU (oneDNN) alike.
        self.model = self._build(start).to(self.device).to(memory_format=torch.channels_last)
        # Loading took a while (pretrained weights): honour a stop sent meanwhile. A resumed run
        # instead goes on to its first step, which stops it keeping the epochs it already has.
        if self.stop.requested and resume is None:
            return self._stopped("Stopped while loading, before training began.")
        if not self._make_loaders(resuming=resume is not None):
            return self._stopped("Stopped while caching features.")
        opt, sched = build_optimizer(self.model, self.cfg, len(self.loader))
        self.step = Step(self.net, opt, sched, self.objective, amp=self.amp, device=self.device)
        if resume is None:
            self.fire("on_run_start", self._run_info())
        else:  # the paused run's exact state: same weights, momentum, schedule position and random streams
            self.load_state_dict(resume.state_dict())
        return True

    def _build(self, start: TransferNet | None) -> TransferNet:
        cfg, classes = self.cfg, self.data.classes
        if start is None:
            model = create_backbone(cfg.backbone, weights=cfg.weights, num_classes=len(classes),
                                    image_size=cfg.image_size)
        elif start.num_classes != len(classes):
            raise TLCoreError(f"The starting model has {start.num_classes} classes; the data has {len(classes)}.")
        else:
            model = copy.deepcopy(start)  # the caller's model is left as it was
        return freeze(model, preset=cfg.preset, frozen=cfg.frozen, train_bn=cfg.train_bn)

    def _stopped(self, message: str) -> bool:
        self.status, self.message = Status.STOPPED, message
        return False

    def _make_loaders(self, resuming: bool) -> bool:
        """Batches of images (augmented when the body learns), or of cached features. False if stopped."""
        cfg, data, model = self.cfg, self.data, self.model
        # Augmentation by default only when the body learns: a frozen body's features are what
        # they are, and without augmentation they can be cached (Teachable Machine's trade).
        self.augment = (not model.body_frozen) if cfg.augment is None else cfg.augment
        self.cached = cfg.feature_cache and not self.augment and model.body_frozen
        self.batch_size = bs = min(cfg.batch_size, len(data.train))
        # A final batch of one would upset BatchNorm; a linear head has none, so it sees every image.
        drop_last = len(data.train) > bs and not model.body_frozen
        if self.cached:
            return self._cache_features(drop_last, resuming)
        aug = Augment.for_data(data.hflip) if self.augment else None
        self.loader = BatchLoader(data.train, model.spec, batch_size=bs, shuffle=True, augment=aug,
                                  drop_last=drop_last, device=self.device, seed=cfg.seed, channels_last=True)
        self.val_loader = BatchLoader(data.val, model.spec, batch_size=max(bs, 256), device=self.device,
                                      channels_last=True)
        self.net = torch.compile(model) if cfg.compile else model
        return True

    def _cache_features(self, drop_last: bool, resuming: bool) -> bool:
        self.fire("on_phase", "caching features", 0.0)
        stop = StopToken() if resuming else self.stop
        feats = {}
        for name, split in (("train", self.data.train), ("val", self.data.val)):
            f = compute_features(self.model, split.images, self.device, batch_size=max(self.batch_size, 256),
                                 amp=self.amp, stop=stop, progress=lambda p: self.fire("on_phase", "caching features", p))
            if f is None:
                return False
            feats[name] = f
        self.loader = TensorLoader(feats["train"], self.data.train.labels, batch_size=self.batch_size, shuffle=True,
                                   drop_last=drop_last, device=self.device, seed=self.cfg.seed)
        self.val_loader = TensorLoader(feats["val"], self.data.val.labels, batch_size=512, device=self.device)
        self.net = self.model.head
        return True

    def _run_info(self) -> RunInfo:
        d = self.data
        trainable, total = self.model.count_parameters()
        return RunInfo(describe_device(self.device), self.cfg.epochs, len(self.loader), len(d.train), len(d.val),
                       len(d.test), list(d.classes), trainable, total, self.cached)

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, budget_s: float | None = None) -> Status:
        """Train until the last epoch, a stop, a failure, early stopping or the time budget.

        ``budget_s``: when the next epoch would end past it, pause at the epoch boundary
        (every call trains at least one epoch).
        """
        cfg = self.cfg
        self.fire("on_phase", "training")
        self.clock.restart()
        self.status, self.message = Status.COMPLETED, ""
        t_call, first = time.perf_counter(), self.epochs_done + 1
        try:
            for epoch in range(first, cfg.epochs + 1):
                spent = time.perf_counter() - t_call
                if budget_s is not None and epoch > first and spent + spent / (epoch - first) > budget_s:
                    self.status = Status.PAUSED
                    break
                if not self.train_epoch(epoch):
                    break
                self.end_epoch(epoch)
                if self.best.patience_spent and epoch < cfg.epochs:
                    self.status = Status.EARLY_STOPPED
                    self.message = (f"Stopped early after epoch {epoch}: no better validation loss for "
                                    f"{self.best.bad_epochs} epochs.")
                    break
        except Diverged as d:
            self.status = Status.FAILED
            self.message = (f"The training loss became NaN or infinite at epoch {d.epoch}, step {d.step}. "
                            f"Try a lower learning rate (it was {cfg.lr:g}).")
        except torch.OutOfMemoryError:
            self.status = Status.FAILED
            self.message = (f"Out of GPU memory at batch size {self.batch_size}. Try a smaller batch size or a "
                            f"smaller image size.")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        return self.status

    def train_epoch(self, epoch: int) -> bool:
        """One pass over the training batches; False if a stop came (before a step)."""
        self.model.train()
        self.meter = meter = EpochMeter(self.device)
        steps, last = len(self.loader), time.perf_counter()
        for i, (x, y) in enumerate(self.loader, 1):
            if self.stop.requested:
                self.status, self.message = Status.STOPPED, f"Stopped at epoch {epoch}, step {i}."
                return False
            loss, logits = self.step(x, y)
            meter.add(loss, logits, y)
            self.clock.seen += len(y)
            now = time.perf_counter()
            # Reading the running loss is a CPU-GPU sync: only when an event is due.
            if now - last >= self.step_interval_s or i == steps:
                last = now
                self.fire("on_step", self._step_event(epoch, i, steps, now))
        return True

    def _step_event(self, epoch: int, step: int, steps: int, now: float) -> StepEvent:
        loss, accuracy = self.meter.read()
        if not math.isfinite(loss):
            raise Diverged(epoch, step)
        rate = self.clock.rate(now)
        left = (self.cfg.epochs - epoch) * steps + (steps - step)
        return StepEvent(epoch, step, steps, loss, accuracy, self.step.lr, rate, left * self.batch_size / rate,
                         self.cfg.epochs)

    def end_epoch(self, epoch: int) -> EpochEvent:
        """Validation: its loss decides which weights are kept and when to stop early."""
        val_loss, val_acc = self.validate()
        if not math.isfinite(val_loss):
            raise Diverged(epoch, len(self.loader))
        best = self.best.update(epoch, val_loss, self.model)
        now = time.perf_counter()
        seconds, (loss, accuracy) = now - self.clock.start, self.meter.read()
        e = EpochEvent(epoch, self.cfg.epochs, loss, accuracy, val_loss, val_acc, self.step.lr, self.clock.rate(now),
                       seconds, seconds / epoch * (self.cfg.epochs - epoch), best)
        self.history.append(e)
        self.epochs_done = epoch
        self.fire("on_epoch_end", e)
        return e

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) on the validation split."""
        net, n = self.net, 0
        was = net.training
        net.eval()
        loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for x, y in self.val_loader:
            with autocast(self.device, self.amp):
                logits = net(x).float()
            loss += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            n += len(y)
        net.train(was)
        return (loss.item() / n, correct.item() / n) if n else (math.nan, math.nan)

    # -- finish ---------------------------------------------------------------------------------
    def finish(self, out=None) -> RunResult:
        """Keep the best epoch's weights, evaluate them on the test split, save; or, if paused,
        capture the state the next call resumes from."""
        images_per_second = self.clock.rate()
        if self.status is Status.PAUSED:
            return self._pause(images_per_second)
        self._keep_best()
        result = self._result(images_per_second)
        if self._should_test():
            self.fire("on_phase", "evaluating")  # the test split, never seen while choosing weights
            result.test = self.test()
            if result.test is None and self.stop.requested:
                self.status = result.status = Status.STOPPED
                self.message = result.message = (f"Stopped while evaluating: epoch {self.best.epoch} is kept, "
                                                 f"not measured on the test split.")
        # metrics.json carries the summary: its status, message and time so far are this run's.
        result.seconds = time.perf_counter() - self.t_start
        if out is not None and self.history and self.is_main:
            self.fire("on_phase", "saving")
            result.checkpoint = self.save(out, result)
        result.seconds = time.perf_counter() - self.t_start
        self.fire("on_run_end", RunEnd(self.status, self.message, self.best.epoch, list(self.history)))
        return result

    def _keep_best(self) -> None:
        """The best epoch's weights (or the last ones, if no epoch finished validation), on the CPU."""
        if self.best.weights is not None:
            self.model.load_state_dict(self.best.weights)
        self.model = self.model.to("cpu", memory_format=torch.contiguous_format).eval()
        self.model.classes = list(self.data.classes)
        if self.status is Status.COMPLETED:
            self.message = (f"Completed {len(self.history)} epochs; kept epoch {self.best.epoch} "
                            f"(best validation loss).")
        elif self.status is Status.STOPPED and self.best.epoch:
            self.message += f" Kept epoch {self.best.epoch}, the best so far."

    def _should_test(self) -> bool:
        s = self.status
        return s in (Status.COMPLETED, Status.EARLY_STOPPED) or (s is not Status.STOPPED and self.best.epoch > 0)

    def test(self) -> Evaluation | None:
        """The kept model on the test split, in the run's precision (as ``evaluate`` on the saved
        run does); None if a stop came meanwhile."""
        d = self.data
        try:
            return evaluate(self.model.to(self.device), d.test.images, d.test.labels, d.classes, device=self.device,
                            autocast_dtype=self.amp, stop=self.stop)
        except StopRequested:
            return None
        finally:
            self.model.to("cpu")

    def save(self, out, result: RunResult):
        # What actually ran, not "automatic": evaluation on another machine then reproduces it.
        config = {**self.cfg.to_dict(), "augment": self.augment, "precision_used": PRECISION_NAMES[self.amp]}
        folder = save_run(out, self.model, self.data.classes, config=config, metrics=result.metrics(self.data.describe()))
        save_replay(out, self.data)
        return folder

    def _result(self, images_per_second: float) -> RunResult:
        return RunResult(self.model, self.cfg, list(self.data.classes), self.status, self.message,
                         history=self.history, best_epoch=self.best.epoch, images_per_second=images_per_second,
                         device=describe_device(self.device))

    def _pause(self, images_per_second: float) -> RunResult:
        result = self._result(images_per_second)
        result.resume = LoopState(self.state_dict())
        self.model.to("cpu")
        result.seconds = time.perf_counter() - self.t_start
        result.message = self.message = (f"Paused after epoch {self.epochs_done} of {self.cfg.epochs}; "
                                         f"the next call goes on from there.")
        return result  # no run_end: the run is not over

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a paused run needs to go on exactly where it stopped."""
        cuda = torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None
        return {"epochs_done": self.epochs_done, "model": self.model.state_dict(), "step": self.step.state_dict(),
                "loader": self.loader.state_dict(), "rng": {"torch": torch.get_rng_state(), "cuda": cuda},
                "best": self.best.state_dict(), "clock": self.clock.state_dict(),
                "history": [dict(vars(e)) for e in self.history]}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.step.load_state_dict(state["step"])
        self.loader.load_state_dict(state["loader"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.best.load_state_dict(state["best"])
        self.clock.load_state_dict(state["clock"])
        self.history = [EpochEvent(**e) for e in state["history"]]
        self.epochs_done = int(state["epochs_done"])
