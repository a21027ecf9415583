"""The trainer: a run is set up, fitted epoch by epoch, then finished (Lightning's split).

- ``setup``: data, the model built (or copied) and frozen on its device, the loaders (with the
  frozen body's features cached when nothing in it learns), and the :class:`~tlcore.step.Step`
  (optimizer, schedule, loss scaler, objective).
- ``fit``: epochs of steps, validation after each; the best validation loss keeps its weights
  and drives early stopping. A stop is honoured within one step; a NaN or exploding loss
  (tlcore.health) or running out of GPU memory ends the run with a plain message; a time budget
  pauses it at an epoch boundary. A run that ends at chance accuracy says so.
- ``finish``: the kept weights on the CPU, the test split evaluated through the one path that
  ``evaluate`` uses too, the run saved.

Hooks receive the trainer, and only the main process of a distributed run fires them or saves.
Everything a paused run needs is in :meth:`Trainer.state_dict`.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..runs.card import write_card
from ..runs.atomic import atomic_folder
from ..runs.checkpoints import save_replay, write_run
from ..config import RunConfig
from .batches import run_batches
from ..data import ImageData, load_dataset
from ..device import PRECISION_NAMES, autocast, autocast_dtype, describe_device, is_main_process, pick_device
from ..errors import TLCoreError
from .. import distributed
from . import health
from ..insight.evaluate import Evaluation, evaluate
from ..events import Callback, EpochEvent, RunEnd, RunInfo, StepEvent, StopRequested, StopToken, UnfreezeEvent
from ..models import TransferNet, create_backbone, freeze
from .objective import Objective
from .optim import build_optimizer, group_rates
from .result import RunResult, Status
from .source_task import SourceTask, objective_for
from .state import LoopState, save_end_state
from .step import Step
from .meters import BestEpoch, Clock, EpochMeter
from .unfreeze import Unfreezer, live_at

STEP_INTERVAL_S = Callback.step_interval_s
# Runs that ended at an epoch boundary: their last state is saved, so they can be continued.
CONTINUABLE = (Status.COMPLETED, Status.EARLY_STOPPED)


def load_run_data(cfg: RunConfig) -> ImageData:
    """The dataset as ``cfg`` names it, split as ``cfg`` says."""
    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed, val_fraction=cfg.val_fraction,
                        samples_per_class=cfg.samples_per_class)


class Diverged(Exception):
    """The loss became NaN or infinite, or exploded (``loss`` then holds its value)."""

    def __init__(self, epoch: int, step: int, loss: float = math.nan):
        self.epoch, self.step, self.loss = epoch, step, loss


class Trainer:
    """One run of ``cfg``. ``train()`` is ``setup``, ``fit`` and ``finish``; a custom
    ``objective`` (other terms, another criterion) replaces the one ``cfg`` describes.
    ``assemble`` instead of ``setup`` trains parts brought from outside (the tutorial's API)."""

    def __init__(self, cfg: RunConfig, *, callbacks: list[Callback] = (), stop: StopToken | None = None,
                 objective: Objective | None = None):
        self.cfg = cfg.validate()
        self.callbacks, self.stop = list(callbacks), stop or StopToken()
        self.objective = objective
        self.notes: list[str] = []  # what the user should know about this run's settings
        self.source: SourceTask | None = None  # the saved run transferred from, if any
        self.source_accuracy: tuple[float | None, float | None] = (None, None)  # its task, before and after
        self.epoch_scheduler = None  # a schedule stepped per epoch (the tutorial's), not per step
        self.unfreezer: Unfreezer | None = None  # gradual unfreezing, when on
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
        self.explode_at = math.inf  # the running loss that ends a run as exploded (set with the data)
        # A resumed run whose schedule depends on its length (onecycle, cosine) runs a new one over
        # this many epochs instead of loading the old one (tlcore.resume); None: the run's own.
        self.schedule_epochs: int | None = None
        self.end_state: LoopState | None = None  # the last epoch's state, saved with the run to continue it

    def fire(self, hook: str, *args) -> None:
        if self.is_main:
            for cb in self.callbacks:
                getattr(cb, hook)(self, *args)

    # -- set up ---------------------------------------------------------------------------------
    def setup(self, data: ImageData | None = None, *, start: TransferNet | None = None,
              resume: LoopState | None = None, announce: bool | None = None) -> bool:
        """Data, model, loaders, step; the paused state if resuming. False if a stop came first.
        ``announce``: fire ``on_run_start`` (default: unless resuming a paused run, which is not new)."""
        torch.manual_seed(self.cfg.seed)
        # Loading: data, model, freezing. Errors here are the user's (bad names, missing files).
        self.fire("on_phase", "loading")
        self.data = data if data is not None else load_run_data(self.cfg)
        if self.data.note:  # streamed from its files: the user should know why it is slower
            self.notes.append(self.data.note)
        self.explode_at = health.explode_threshold(len(self.data.classes))
        self.device = pick_device(self.cfg.device)
        self.amp = autocast_dtype(self.device, self.cfg.precision)
        # channels_last: faster convolutions on CUDA and on CPU (oneDNN) alike.
        self.model = self._build(start).to(self.device).to(memory_format=torch.channels_last)
        self.source = SourceTask.of(self.cfg.weights) if start is None else None
        # Loading took a while (pretrained weights): honour a stop sent meanwhile. A resumed run
        # instead goes on to its first step, which stops it keeping the epochs it already has.
        if self.stop.requested and resume is None:
            return self._stopped("Stopped while loading, before training began.")
        if not self._make_loaders(resuming=resume is not None):
            return self._stopped("Stopped while caching features.")
        self.unfreezer = self._unfreezer()
        if distributed.world() > 1:  # each rank its shard of every epoch; DDP averages the gradients
            self.loader.shard(distributed.rank(), distributed.world())
            self.net = distributed.wrap(self.net, self.device)
        if self.objective is None:  # built on the placed model: L2-SP starts from these weights
            self.objective, notes = objective_for(self.cfg, self.model, self.source, self.device)
            self.notes += notes
        plan = self.cfg if self.schedule_epochs is None else dataclasses.replace(self.cfg, epochs=self.schedule_epochs)
        opt, sched = build_optimizer(self.model, plan, len(self.loader))
        self.step = Step(self.net, opt, sched, self.objective, amp=self.amp, device=self.device)
        if resume is not None:  # the paused run's exact state: same weights, momentum, schedule position and random streams
            self.load_state_dict(resume.state_dict())
        if resume is None if announce is None else announce:
            self.fire("on_run_start", self._run_info())
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

    def _unfreezer(self) -> Unfreezer | None:
        """Gradual unfreezing, when asked for and something can thaw (a note says what, or why not)."""
        every = self.cfg.unfreeze_every
        if every <= 0:
            return None
        u = Unfreezer(self.model, every, self.cfg.train_bn)
        if not u.active:
            self.notes.append("Gradual unfreezing has nothing to thaw: the freezing preset keeps the whole body frozen.")
            return None
        if distributed.world() > 1:  # DDP fixes at wrapping which parameters it averages
            raise TLCoreError("Gradual unfreezing (unfreeze_every) needs a single process; set it to 0 under torchrun.")
        joining = live_at(u.order, every, self.cfg.epochs)[1:]  # by the last epoch, after the head
        pace = "one per epoch" if every == 1 else f"one every {every} epochs"
        self.notes.append(f"Gradual unfreezing: the head alone first, then {', '.join(joining) or 'nothing'} "
                          f"({pace})" + (f"; {', '.join(u.order[len(joining):])} stay frozen: the run ends first."
                                         if len(joining) < len(u.order) else "."))
        return u

    def _thaw(self, epoch: int) -> None:
        """The groups this epoch trains, as gradual unfreezing says; an event when more join."""
        thawed = self.unfreezer.apply(self.model, epoch)
        if thawed:
            rates = group_rates(self.model, self.cfg)  # head first, then the body from the top down
            live = [g for g in rates if g not in self.model.frozen]
            self.fire("on_unfreeze", UnfreezeEvent(epoch, thawed, live, {g: rates[g] for g in live}))

    def _stopped(self, message: str) -> bool:
        self.status, self.message = Status.STOPPED, message
        return False

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

    def _run_info(self) -> RunInfo:
        d = self.data
        trainable, total = self.model.count_parameters()
        return RunInfo(describe_device(self.device), self.cfg.epochs, len(self.loader), len(d.train), len(d.val),
                       len(d.test), list(d.classes), trainable, total, self.cached, list(self.notes))

    def assemble(self, model: torch.nn.Module, step: Step, loader, val_loader=None, *, epoch_scheduler=None) -> None:
        """Set up from ready parts instead of ``cfg``: any module, its Step, and loaders yielding
        ``(inputs, labels)`` on ``step.device`` (``val_loader`` None: no validation, the last
        epoch's weights are kept). ``epoch_scheduler`` steps after every epoch."""
        self.model, self.net, self.step = model, step.net, step
        self.device, self.amp, self.objective = step.device, step.amp, step.objective
        self.loader, self.val_loader, self.epoch_scheduler = loader, val_loader, epoch_scheduler
        self.batch_size = getattr(loader, "batch_size", None) or 1

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
        self.objective.open()
        try:
            for epoch in range(first, cfg.epochs + 1):
                spent = time.perf_counter() - t_call
                if budget_s is not None and epoch > first and spent + spent / (epoch - first) > budget_s:
                    self.status = Status.PAUSED
                    break
                if self.unfreezer is not None:
                    self._thaw(epoch)
                if not self.train_epoch(epoch):
                    break
                self.end_epoch(epoch)
                if self.epoch_scheduler is not None:
                    self.epoch_scheduler.step()
                if self.best.patience_spent and epoch < cfg.epochs:
                    self.status = Status.EARLY_STOPPED
                    self.message = (f"Stopped early after epoch {epoch}: no better validation loss for "
                                    f"{self.best.bad_epochs} epochs.")
                    break
        except Diverged as d:
            self.status = Status.FAILED
            self.message = (health.exploded_message(d.loss, d.epoch, d.step, len(self.data.classes), cfg.lr)
                            if math.isfinite(d.loss) else
                            f"The training loss became NaN or infinite at epoch {d.epoch}, step {d.step}. "
                            f"Try a lower learning rate (it was {cfg.lr:g}).")
        except torch.OutOfMemoryError:
            self.status = Status.FAILED
            self.message = (f"Out of GPU memory at batch size {self.batch_size}. Try a smaller batch size or a "
                            f"smaller image size.")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        finally:
            self.objective.close()
        return self.status

    def train_epoch(self, epoch: int) -> bool:
        """One pass over the training batches; False if a stop came (before a step)."""
        self.model.train()
        self.meter = meter = EpochMeter(self.device)
        world = distributed.world()
        steps, last = len(self.loader), time.perf_counter()
        for i, (x, y) in enumerate(self.loader, 1):
            if self.stop.requested:
                self.status, self.message = Status.STOPPED, f"Stopped at epoch {epoch}, step {i}."
                return False
            loss, logits = self.step(x, y)
            meter.add(loss, logits, y)
            self.clock.seen += len(y) * world  # every rank trains on as many (within one)
            now = time.perf_counter()
            # Reading the running loss is a CPU-GPU sync: only when an event is due (and at an
            # epoch's first step, so a chart starts where the loss started, even a blow-up's).
            if now - last >= self.step_interval_s or i in (1, steps):
                last = now
                event = self._step_event(epoch, i, steps, now)
                self.fire("on_step", event)  # the chart shows the blow-up before the run ends on it
                if world == 1 and event.loss > self.explode_at:  # (a rank alone cannot end a distributed run)
                    raise Diverged(epoch, i, event.loss)
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
        if self.val_loader is None:
            val_loss = val_acc = math.nan
            best = False
        else:
            val_loss, val_acc = self.validate()
            if not math.isfinite(val_loss):
                raise Diverged(epoch, len(self.loader))
            best = self.best.update(epoch, val_loss, self.model)
        now = time.perf_counter()
        seconds, (loss, accuracy) = now - self.clock.start, self._epoch_metrics()
        e = EpochEvent(epoch, self.cfg.epochs, loss, accuracy, val_loss, val_acc, self.step.lr, self.clock.rate(now),
                       seconds, seconds / epoch * (self.cfg.epochs - epoch), best)
        self.history.append(e)
        self.epochs_done = epoch
        self.fire("on_epoch_end", e)
        return e

    def _epoch_metrics(self) -> tuple[float, float]:
        """The epoch's training loss and accuracy, over every rank's images."""
        if distributed.world() == 1:
            return self.meter.read()
        m = self.meter
        loss, correct, n = distributed.sum_across(m.loss, m.correct, torch.tensor(float(m.n), device=self.device))
        return loss.item() / max(n.item(), 1), correct.item() / max(n.item(), 1)

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
        if out is not None and self.history and self.is_main and self.status in CONTINUABLE:
            self.end_state = LoopState(self.state_dict())  # before the best epoch's weights replace the last
        self._keep_best()
        test = self._judge() if self._should_test() else None
        self._check_chance()
        result = self._result(images_per_second, test)
        # metrics.json carries the summary: its status, message and time so far are this run's.
        result.seconds = time.perf_counter() - self.t_start
        if out is not None and self.history and self.is_main:
            self.fire("on_phase", "saving")
            result.checkpoint = self.save(out, result)
        result.seconds = time.perf_counter() - self.t_start
        self.fire("on_run_end", RunEnd(self.status, self.message, self.best.epoch, list(self.history)))
        return result

    def _keep_best(self) -> None:
        """The best epoch's weights (or the last ones, if no epoch finished validation), on the CPU;
        the closing sentence says which."""
        if self.best.weights is not None:
            self.model.load_state_dict(self.best.weights)
        self.model = self.model.to("cpu", memory_format=torch.contiguous_format).eval()
        self.model.classes = list(self.data.classes)
        if self.status is Status.COMPLETED:
            n = len(self.history)
            self.message = (f"Completed {n} epoch{'' if n == 1 else 's'}; kept epoch {self.best.epoch} "
                            f"(best validation loss).")
        elif self.status is Status.STOPPED and self.best.epoch:
            self.message += f" Kept epoch {self.best.epoch}, the best so far."

    def _check_chance(self) -> None:
        """A run that ended normally but learned nothing says so (in its message and notes)."""
        if self.status not in CONTINUABLE:
            return
        kept = next((e.val_accuracy for e in self.history if e.epoch == self.best.epoch), None)
        note = health.chance_note(kept, self.data.val.labels, self.cfg.lr)
        if note is not None:
            self.message += " It is no better than chance."
            self.notes.append(note)

    def _should_test(self) -> bool:
        s = self.status
        return s in CONTINUABLE or (s is not Status.STOPPED and self.best.epoch > 0)

    def _judge(self) -> Evaluation | None:
        """Evaluating: the test split, never seen while choosing weights, then the source task."""
        self.fire("on_phase", "evaluating")
        test = self.test()
        if test is None and self.stop.requested:
            self.status = Status.STOPPED
            self.message = f"Stopped while evaluating: epoch {self.best.epoch} is kept, not measured on the test split."
        elif test is not None and self.source is not None:
            self.source_accuracy = self._forgetting()
        return test

    def test(self) -> Evaluation | None:
        """The kept model on the test split, in the run's precision (as ``evaluate`` on the saved
        run does); None if a stop came meanwhile."""
        d = self.data
        try:
            return evaluate(self.model.to(self.device), d.test.images, d.test.labels, d.classes, device=self.device,
                            autocast_dtype=self.amp, stop=self.stop, shared=True)
        except StopRequested:
            return None
        finally:
            self.model.to("cpu")

    def _forgetting(self) -> tuple[float | None, float | None]:
        """The source task before and after: the source model, then this body read by the source's head."""
        kw = dict(device=self.device, amp=self.amp, stop=self.stop)
        try:
            return self.source.accuracy(self.source.model, **kw), self.source.accuracy(self.model, **kw)
        except StopRequested:
            return None, None

    def save(self, out, result: RunResult):
        # What actually ran, not "automatic": evaluation on another machine then reproduces it.
        world = distributed.world()
        config = {**self.cfg.to_dict(), "augment": self.augment, "precision_used": PRECISION_NAMES[self.amp],
                  "world_size": world, "effective_batch_size": self.batch_size * world,
                  "lr_scaling": "none: lr applies to the effective batch as given"}
        # One folder, written under a temporary name and renamed when whole: a kill mid-save
        # leaves no run rather than half of one (tlcore.atomic).
        with atomic_folder(out) as tmp:
            write_run(tmp, self.model, self.data.classes, config=config, metrics=result.metrics(self.data.describe()))
            save_replay(tmp, self.data)
            if self.end_state is not None:
                save_end_state(tmp, self.end_state)
            write_card(tmp, name=Path(out).name)
        return Path(out)

    def _result(self, images_per_second: float, test: Evaluation | None = None) -> RunResult:
        before, after = self.source_accuracy
        return RunResult(self.model, self.cfg, list(self.data.classes), self.status, self.message,
                         history=self.history, best_epoch=self.best.epoch, test=test,
                         images_per_second=images_per_second, device=describe_device(self.device),
                         notes=list(self.notes), source_accuracy_before=before, source_accuracy_after=after)

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
        self.step.load_state_dict(state["step"], schedule=self.schedule_epochs is None)
        self.loader.load_state_dict(state["loader"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.best.load_state_dict(state["best"])
        self.clock.load_state_dict(state["clock"])
        self.history = [EpochEvent(**e) for e in state["history"]]
        self.epochs_done = int(state["epochs_done"])
