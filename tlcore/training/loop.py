"""The trainer: a run is set up, fitted epoch by epoch, then finished (Lightning's split).

- ``setup``: data, the model built (or copied) and frozen on its device, the loaders (with the
  frozen body's features cached when nothing in it learns), and the :class:`~tlcore.training.step.Step`
  (optimizer, schedule, loss scaler, objective). ``assemble`` instead takes parts made elsewhere
  (the tutorial's API, the Compare tab's probes).
- ``fit``: epochs of steps, validation after each. A stop is honoured within one step; running
  out of GPU memory ends the run with a plain message.
- ``finish``: the kept weights on the CPU, the test split evaluated through the one path that
  ``evaluate`` uses too, then the result, to which callbacks add (and which one saves).

The trainer knows hook names, not behaviours. Keeping the best epoch and early stopping, gradual
unfreezing, a diverging loss, the time budget, forgetting, the chance check and saving are
callbacks (tlcore.training.callbacks) that act through the trainer they receive:
:meth:`Trainer.stop_run` ends the loop with a status and a message. Hooks fire in the
callbacks' order; watchers hear only the main process of a distributed run, callbacks that act
(``every_rank``) every process. Everything a paused run needs is in :meth:`Trainer.state_dict`.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time

import torch
import torch.nn.functional as F

from .. import distributed
from ..config import RunConfig
from ..data import ImageData, load_dataset
from ..data.unlabelled import with_pool
from ..device import (autocast, autocast_dtype, cpu_threads, describe_device, is_main_process, pick_device,
                      step_threads)
from ..errors import TLCoreError
from ..events import Callback, EpochEvent, RunEnd, RunInfo, StepEvent, StopRequested, StopToken, ValidationEvent
from ..insight.evaluate import Evaluation, evaluate
from ..models import TransferNet, create_backbone, freeze
from . import balance
from .batches import run_batches
from .meters import BestEpoch, Clock, EpochMeter, best_epoch  # noqa: F401 (BestEpoch: its old home)
from .objective import Objective
from .optim import build_optimizer
from .result import CONTINUABLE, RunResult, Status
from .semi import pseudo_sentence
from .source_task import SourceTask, objective_for
from .state import LoopState
from .step import Step

STEP_INTERVAL_S = Callback.step_interval_s


def load_run_data(cfg: RunConfig) -> ImageData:
    """The dataset as ``cfg`` names it, split as ``cfg`` says, with the unlabelled images it asks for."""
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed, val_fraction=cfg.val_fraction,
                        samples_per_class=cfg.samples_per_class)
    data = balance.with_long_tail(data, cfg.imbalance, cfg.seed)  # (data handed to a run is taken as it is)
    return with_pool(data, cfg.labelled_per_class, cfg.unlabelled, cfg.seed)


class Trainer:
    """One run: ``setup`` (from ``cfg``) or ``assemble`` (ready parts), then ``fit`` and ``finish``.

    Args:
        cfg: the run's settings; None for assembled parts, which then need ``epochs``.
        epochs: how many epochs ``fit`` trains (default: ``cfg.epochs``).
        callbacks: their hooks fire in this order (a run's: tlcore.training.callbacks.run_callbacks).
        stop: a stop request, honoured within one step.
        objective: replaces the loss ``cfg`` describes (other terms, another criterion).
    """

    def __init__(self, cfg: RunConfig | None = None, *, epochs: int | None = None, callbacks: list[Callback] = (),
                 stop: StopToken | None = None, objective: Objective | None = None):
        self.cfg = cfg.validate() if cfg is not None else None
        self.epochs = self.cfg.epochs if epochs is None and cfg is not None else RunConfig.check(epochs=epochs)["epochs"]
        self.callbacks, self.stop, self.objective = list(callbacks), stop or StopToken(), objective
        self.is_main = is_main_process()
        asked = [cb.step_interval_s for cb in self.callbacks if math.isfinite(cb.step_interval_s)]
        self.step_interval_s = min(asked or [STEP_INTERVAL_S])
        self.notes: list[str] = []  # what the user should know about this run's settings
        self.source: SourceTask | None = None  # the saved run transferred from, if any
        self.status, self.message = Status.STOPPED, "Stopped before training began."
        self.should_stop = False  # set by stop_run: the loop ends at its next check
        self.t_start = time.perf_counter()
        self.data: ImageData | None = None
        self.model: TransferNet | None = None
        self.net = self.step = self.loader = self.val_loader = None  # net: what a batch goes through
        self.cached = self.augment = False
        self.history: list[EpochEvent] = []
        self.epochs_done = 0
        self.clock = Clock()
        # A resumed run whose schedule depends on its length (onecycle, cosine) runs a new one over
        # this many epochs instead of loading the old one (tlcore.training.resume); None: the run's own.
        self.schedule_epochs: int | None = None

    def fire(self, hook: str, *args) -> None:
        """``hook`` on every callback, in order: watchers on the main process only."""
        for cb in self.callbacks:
            if self.is_main or cb.every_rank:
                getattr(cb, hook)(self, *args)

    def stop_run(self, status: Status, message: str) -> None:
        """End the loop at its next check (within the step or epoch at hand) with ``status`` and
        ``message``; the first stop stands (early stopping over a time budget's pause)."""
        if not self.should_stop:
            self.should_stop, self.status, self.message = True, status, message

    # -- set up ---------------------------------------------------------------------------------
    def setup(self, data: ImageData | None = None, *, start: TransferNet | None = None,
              resume: LoopState | None = None, announce: bool | None = None) -> bool:
        """Data, model, loaders, step; the paused state if resuming. False if a stop came first.
        ``announce``: fire ``on_run_start`` (default: unless resuming a paused run, which is not new)."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        # Loading: data, model, freezing. Errors here are the user's (bad names, missing files).
        self.fire("on_phase", "loading")
        self.data = data if data is not None else load_run_data(cfg)
        if self.data.note:  # streamed from its files: the user should know why it is slower
            self.notes.append(self.data.note)
        self.notes += pool_notes(self.data)
        self.balance, note = balance.prepare(self.data, cfg.balance)
        self.notes += [note] if note else []
        self.device = pick_device(cfg.device)
        self.amp = autocast_dtype(self.device, cfg.precision)
        # channels_last: faster convolutions on CUDA and on CPU (oneDNN) alike.
        self.model = build_model(cfg, self.data.classes, start).to(self.device).to(memory_format=torch.channels_last)
        self.source = SourceTask.of(cfg.weights) if start is None else None
        # Loading took a while (pretrained weights): honour a stop sent meanwhile. A resumed run
        # instead goes on to its first step, which stops it keeping the epochs it already has.
        if self.stop.requested and resume is None:
            self.stop_run(Status.STOPPED, "Stopped while loading, before training began.")
            return False
        if not self._make_loaders(resuming=resume is not None):
            self.stop_run(Status.STOPPED, "Stopped while caching features.")
            return False
        labels, k = self.data.train.labels, len(self.data.classes)
        if self.balance["mode"] == "sampler":
            self.loader.weights = balance.sample_weights(labels, k)
        self.fire("on_setup")  # before the optimizer: what it holds is frozen as the run ends
        if distributed.world() > 1:  # each rank its shard of every epoch and batch; DDP averages the gradients
            self.batch_size = self.loader.shard(distributed.rank(), distributed.world()).batch_size
            self.net = distributed.wrap(self.net, self.device)
        if self.objective is None:  # built on the placed model: L2-SP starts from these weights
            self.objective, notes = objective_for(cfg, self.model, self.source, self.device)
            if self.balance["mode"] == "loss":
                self.objective.class_weight = balance.class_weights(labels, k)
            self.notes += notes
        plan = cfg if self.schedule_epochs is None else dataclasses.replace(cfg, epochs=self.schedule_epochs)
        opt, sched = build_optimizer(self.model, plan, len(self.loader))
        self.step = Step(self.net, opt, sched, self.objective, amp=self.amp, device=self.device)
        if resume is not None:  # the paused run's exact state: same weights, momentum, schedule position and random streams
            self.load_state_dict(resume.state_dict())
        if resume is None if announce is None else announce:
            self.fire("on_run_start", run_info(self))
        return True

    def _make_loaders(self, resuming: bool) -> bool:
        """Batches of images (augmented when the body learns), or of cached features. False if stopped."""
        # A resumed run does not stop while caching: its first step stops it, keeping its epochs.
        b = run_batches(self.cfg, self.data, self.model, self.device, self.amp,
                        stop=StopToken() if resuming else self.stop,
                        progress=lambda p: self.fire("on_phase", "caching features", p))
        if b is None:
            return False
        self.loader, self.val_loader, self.net = b.loader, b.val_loader, b.net
        self.augment, self.cached, self.batch_size = b.augment, b.cached, b.batch_size
        return True

    def assemble(self, model: torch.nn.Module, step: Step, loader, val_loader=None) -> None:
        """Set up from ready parts instead of ``cfg``: any module, its Step, and loaders yielding
        ``(inputs, labels)`` on ``step.device`` (``val_loader`` None: no validation)."""
        self.model, self.net, self.step = model, step.net, step
        self.device, self.amp, self.objective = step.device, step.amp, step.objective
        self.loader, self.val_loader = loader, val_loader
        self.batch_size = getattr(loader, "batch_size", None) or 1

    # -- fit ------------------------------------------------------------------------------------
    def fit(self) -> Status:
        """Train until the last epoch, the stop token, or a callback's stop (early stopping, a
        diverging loss, the time budget); running out of GPU memory fails the run with advice."""
        self.fire("on_phase", "training")
        self.clock.restart()
        self.status, self.message, self.should_stop = Status.COMPLETED, "", False
        self.objective.open()
        try:
            with cpu_threads(fit_threads(self)):
                self._epochs()
        except torch.OutOfMemoryError:
            self.stop_run(Status.FAILED, f"Out of GPU memory at batch size {self.batch_size}. Try a smaller batch "
                                         f"size or a smaller image size.")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        finally:
            self.objective.close()
        self.fire("on_fit_end")
        return self.status

    def _epochs(self) -> None:
        for epoch in range(self.epochs_done + 1, self.epochs + 1):
            self.fire("on_epoch_start", epoch)
            if self.should_stop or not self.train_epoch(epoch):
                break
            self.end_epoch(epoch)
            if self.should_stop:
                break

    def train_epoch(self, epoch: int) -> bool:
        """One pass over the training batches; False if the run was stopped meanwhile."""
        self.model.train()
        self.meter = meter = EpochMeter(self.device)
        world = distributed.world()
        steps, last = len(self.loader), time.perf_counter()
        for i, (x, y) in enumerate(self.loader, 1):
            if self.stop.requested:
                self.stop_run(Status.STOPPED, f"Stopped at epoch {epoch}, step {i}.")
                return False
            loss, logits = self.step(x, y)
            meter.add(loss, logits, y)
            self.clock.seen += len(y) * world  # every rank trains on as many (within one)
            now = time.perf_counter()
            # Reading the running loss is a CPU-GPU sync: only when an event is due (and at an
            # epoch's first step, so a chart starts where the loss started, even a blow-up's).
            if now - last >= self.step_interval_s or i in (1, steps):
                last = now
                event = step_event(self, epoch, i, steps, now)
                for hook in ("on_loss", "on_step"):  # a run stopped on its loss does not report it
                    self.fire(hook, event)
                    if self.should_stop:
                        return False
        return True

    def end_epoch(self, epoch: int) -> EpochEvent | None:
        """Validation, then the epoch's record; None if a callback stopped the run on its validation."""
        val_loss = val_acc = math.nan
        best = False
        if self.val_loader is not None:
            v = ValidationEvent(epoch, *self.validate())
            self.fire("on_validation_end", v)  # KeepBest marks it best, Divergence ends a NaN
            if self.should_stop:
                return None
            val_loss, val_acc, best = v.loss, v.accuracy, v.best
        now = time.perf_counter()
        seconds, (loss, accuracy) = now - self.clock.start, epoch_metrics(self.meter, self.device)
        e = EpochEvent(epoch, self.epochs, loss, accuracy, val_loss, val_acc, self.step.lr, self.clock.rate(now),
                       seconds, seconds / epoch * (self.epochs - epoch), best)
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
    def finish(self) -> RunResult:
        """The kept weights (KeepBest put them back) on the CPU, evaluated on the test split; the
        result, which callbacks add to and save. A paused run's result holds the state to resume."""
        images_per_second = self.clock.rate()
        if self.status is Status.PAUSED:
            return paused_result(self, images_per_second)
        self.model = self.model.to("cpu", memory_format=torch.contiguous_format).eval()
        self.model.classes = list(self.data.classes)
        kept = best_epoch(self.history)
        tested = self.status in CONTINUABLE or (self.status is not Status.STOPPED and kept > 0)
        result = run_result(self, images_per_second, self._test(kept) if tested else None)
        self.fire("on_result", result)
        result.seconds = time.perf_counter() - self.t_start
        self.fire("on_run_end", RunEnd(result.status, result.message, kept, list(self.history)))
        return result

    def _test(self, kept: int) -> Evaluation | None:
        """Evaluating: the kept model on the test split, never seen while choosing weights, in the
        run's precision (as ``evaluate`` on the saved run does); None if a stop came meanwhile."""
        self.fire("on_phase", "evaluating")
        d = self.data
        try:
            return evaluate(self.model.to(self.device), d.test.images, d.test.labels, d.classes, device=self.device,
                            autocast_dtype=self.amp, stop=self.stop, shared=True)
        except StopRequested:
            self.status = Status.STOPPED
            self.message = f"Stopped while evaluating: epoch {kept} is kept, not measured on the test split."
            return None
        finally:
            self.model.to("cpu")

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a paused run needs to go on exactly where it stopped, its callbacks' state included."""
        cuda = torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None
        state = {"epochs_done": self.epochs_done, "model": self.model.state_dict(), "step": self.step.state_dict(),
                 "loader": self.loader.state_dict(), "rng": {"torch": torch.get_rng_state(), "cuda": cuda}}
        state.update({cb.state_key: cb.state_dict() for cb in self.callbacks if cb.state_key})
        state.update(clock=self.clock.state_dict(), history=[dict(vars(e)) for e in self.history])
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.step.load_state_dict(state["step"], schedule=self.schedule_epochs is None)
        self.loader.load_state_dict(state["loader"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        for cb in self.callbacks:
            if cb.state_key in state:
                cb.load_state_dict(state[cb.state_key])
        self.clock.load_state_dict(state["clock"])
        self.history = [EpochEvent(**e) for e in state["history"]]
        self.epochs_done = int(state["epochs_done"])


def build_model(cfg: RunConfig, classes: list[str], start: TransferNet | None = None) -> TransferNet:
    """``cfg.backbone`` for ``classes`` (or a copy of ``start``: the caller's stays as it was), frozen as ``cfg`` says."""
    if start is None:
        model = create_backbone(cfg.backbone, weights=cfg.weights, num_classes=len(classes),
                                image_size=cfg.image_size)
    elif start.num_classes != len(classes):
        raise TLCoreError(f"The starting model has {start.num_classes} classes; the data has {len(classes)}.")
    else:
        model = copy.deepcopy(start)
    return freeze(model, preset=cfg.preset, frozen=cfg.frozen, train_bn=cfg.train_bn)


def fit_threads(t: Trainer) -> int | None:
    """One CPU thread for steps too small to share (tlcore.device.step_threads); None: as set.
    The model (or its head, on cached features) is measured, not ``net``: a DDP or compiled wrap."""
    example = getattr(t.loader, "example", None)  # an assembled run's own loader may have none
    if example is None:
        return None
    return step_threads(t.model.head if t.cached else t.model, example(), t.device)


def pool_notes(data: ImageData) -> list[str]:
    """What became of the data's unlabelled images, in words from their own numbers."""
    if data.pseudo is not None:
        return [pseudo_sentence(data.pseudo)]
    if data.unlabelled is not None and len(data.unlabelled):
        return [f"{len(data.unlabelled):,} unlabelled images are not used: semi-supervised is off "
                f"(--semi-supervised label-spreading or self-training labels them)."]
    return []


def run_info(t: Trainer) -> RunInfo:
    d = t.data
    trainable, total = t.model.count_parameters()
    return RunInfo(describe_device(t.device), t.epochs, len(t.loader), len(d.train), len(d.val), len(d.test),
                   list(d.classes), trainable, total, t.cached, list(t.notes))


def step_event(t: Trainer, epoch: int, step: int, steps: int, now: float) -> StepEvent:
    """Progress so far: reads the running loss (a CPU-GPU sync point)."""
    loss, accuracy = t.meter.read()
    rate = t.clock.rate(now)
    left = (t.epochs - epoch) * steps + (steps - step)
    return StepEvent(epoch, step, steps, loss, accuracy, t.step.lr, rate, left * t.batch_size / rate, t.epochs)


def epoch_metrics(meter: EpochMeter, device: torch.device) -> tuple[float, float]:
    """The epoch's training loss and accuracy, over every rank's images."""
    if distributed.world() == 1:
        return meter.read()
    loss, correct, n = distributed.sum_across(meter.loss, meter.correct, torch.tensor(float(meter.n), device=device))
    return loss.item() / max(n.item(), 1), correct.item() / max(n.item(), 1)


def run_result(t: Trainer, images_per_second: float, test: Evaluation | None = None) -> RunResult:
    return RunResult(t.model, t.cfg, list(t.data.classes), t.status, t.message, history=t.history,
                     best_epoch=best_epoch(t.history), test=test, images_per_second=images_per_second,
                     device=describe_device(t.device), notes=list(t.notes), pseudo_labels=t.data.pseudo,
                     balance=getattr(t, "balance", None))


def paused_result(t: Trainer, images_per_second: float) -> RunResult:
    """A paused run's result: the state the next call resumes from (no run_end: the run is not over)."""
    result = run_result(t, images_per_second)
    result.resume = LoopState(t.state_dict())
    t.model.to("cpu")
    result.seconds = time.perf_counter() - t.t_start
    return result
