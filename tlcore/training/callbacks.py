"""Callbacks that act (Lightning's ``EarlyStopping``, ``ModelCheckpoint``, ``BackboneFinetuning``).

The trainer runs the loop and fires hooks; what a run does besides stepping is decided here,
each behaviour in one place, through the trainer a hook receives (``trainer.stop_run`` ends the
loop with a status and a message):

- :class:`KeepBest`: the best validation loss keeps its weights and drives early stopping;
  at the end of fitting the model gets them back (``train``, the tutorial's API and the
  Compare tab's probes all keep their best epoch through it).
- :class:`GradualUnfreezing`: more layer groups train as the epochs go (tlcore.training.unfreeze).
- :class:`Divergence`: a NaN or exploding loss ends the run with advice (tlcore.training.health).
- :class:`TimeBudget`: a run pauses at the epoch boundary its next epoch would overrun.
- :class:`Forgetting` and :class:`ChanceCheck`: what the finished run adds to its result.
- :class:`SaveRun`: the finished run written into its folder.

:func:`run_callbacks` puts a run's callbacks around the caller's in the order their hooks need;
:func:`fit_callbacks` are those of any fit, parts assembled outside ``train`` included.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from .. import distributed
from ..config import RunConfig
from ..errors import TLCoreError
from ..events import Callback, EpochEvent, StepEvent, StopRequested, UnfreezeEvent, ValidationEvent
from ..device import PRECISION_NAMES
from ..runs.atomic import atomic_folder
from ..runs.card import write_card
from ..runs.checkpoints import save_replay, write_run
from . import health
from .meters import BestEpoch
from .optim import group_rates
from .result import CONTINUABLE, RunResult, Status
from .state import LoopState, save_end_state
from .unfreeze import NOTHING_TO_THAW, Unfreezer, schedule_note


class Acting(Callback):
    """A callback that acts on the loop: on every process, and asking for no step events of its
    own (it reads those the watchers ask for)."""

    every_rank = True
    step_interval_s = math.inf


class KeepBest(Acting):
    """The weights of the best validation loss so far, kept on the CPU; early stopping after
    ``patience`` epochs without a better one (0: never). When fitting ends (unless paused), the
    model gets the best epoch's weights back, or keeps its last ones if no epoch was validated."""

    state_key = "best"  # a paused run's state (and a saved run's) holds it under this name

    def __init__(self, patience: int = 0):
        self.best = BestEpoch(patience)

    def on_validation_end(self, trainer, event: ValidationEvent) -> None:
        if math.isfinite(event.loss):  # (a loss that is not a number ends the run: Divergence)
            event.best = self.best.update(event.epoch, event.loss, trainer.model)

    def on_epoch_end(self, trainer, event: EpochEvent) -> None:
        if self.best.patience_spent and event.epoch < trainer.epochs:
            trainer.stop_run(Status.EARLY_STOPPED, f"Stopped early after epoch {event.epoch}: no better validation "
                                                   f"loss for {self.best.bad_epochs} epochs.")

    def on_fit_end(self, trainer) -> None:
        if trainer.status is Status.PAUSED:  # the next call goes on from the last weights
            return
        if self.best.weights is not None:
            trainer.model.load_state_dict(self.best.weights)
        if trainer.status is Status.COMPLETED:
            n = len(trainer.history)
            trainer.message = (f"Completed {n} epoch{'' if n == 1 else 's'}; kept epoch {self.best.epoch} "
                               f"(best validation loss).")
        elif trainer.status is Status.STOPPED and self.best.epoch:
            trainer.message += f" Kept epoch {self.best.epoch}, the best so far."

    def state_dict(self) -> dict:
        return self.best.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.best.load_state_dict(state)


class GradualUnfreezing(Acting):
    """The head trains alone first, then one more layer group every ``cfg.unfreeze_every`` epochs,
    from the top down, up to what the freezing lets train (a note says what, or why nothing)."""

    def __init__(self, cfg: RunConfig):
        self.cfg, self.unfreezer = cfg, None

    def on_setup(self, trainer) -> None:
        u = Unfreezer(trainer.model, self.cfg.unfreeze_every, self.cfg.train_bn)
        if not u.active:
            trainer.notes.append(NOTHING_TO_THAW)
            return
        if distributed.world() > 1:  # DDP fixes at wrapping which parameters it averages
            raise TLCoreError("Gradual unfreezing (unfreeze_every) needs a single process; set it to 0 under torchrun.")
        trainer.notes.append(schedule_note(u.order, u.every, trainer.epochs))
        self.unfreezer = u

    def on_epoch_start(self, trainer, epoch: int) -> None:
        """The groups this epoch trains; an event when more join."""
        if self.unfreezer is None:
            return
        model = trainer.model
        thawed = self.unfreezer.apply(model, epoch)
        if thawed:
            rates = group_rates(model, self.cfg)  # head first, then the body from the top down
            live = [g for g in rates if g not in model.frozen]
            trainer.fire("on_unfreeze", UnfreezeEvent(epoch, thawed, live, {g: rates[g] for g in live}))


class Divergence(Acting):
    """Ends a run whose loss became NaN or infinite, or exploded far past what guessing scores
    (tlcore.training.health), with advice naming the learning rate ``lr``."""

    def __init__(self, lr: float):
        self.lr, self.classes, self.explode_at = lr, 0, math.inf  # parts assembled without data: NaN only

    def on_setup(self, trainer) -> None:
        self.classes = len(trainer.data.classes)
        self.explode_at = health.explode_threshold(self.classes)

    def on_loss(self, trainer, event: StepEvent) -> None:
        if not math.isfinite(event.loss):  # ended before it is charted
            trainer.stop_run(Status.FAILED, health.nan_message(event.epoch, event.step, self.lr))

    def on_step(self, trainer, event: StepEvent) -> None:
        # After the watchers (run_callbacks puts it last): the chart shows the blow-up before the
        # run ends on it. A rank alone cannot end a distributed run.
        if event.loss > self.explode_at and distributed.world() == 1:
            trainer.stop_run(Status.FAILED, health.exploded_message(event.loss, event.epoch, event.step,
                                                                    self.classes, self.lr))

    def on_validation_end(self, trainer, event: ValidationEvent) -> None:
        if not math.isfinite(event.loss):
            trainer.stop_run(Status.FAILED, health.nan_message(event.epoch, len(trainer.loader), self.lr))


class TimeBudget(Acting):
    """Pauses the run at the epoch boundary after which its next epoch would end past ``budget_s``
    seconds of this call (ZeroGPU's limit); every call trains at least one epoch. Its clock is
    the call's own, so a resumed run's state does not carry it."""

    def __init__(self, budget_s: float):
        self.budget_s, self.t_start, self.first = budget_s, 0.0, None

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if self.first is None:
            self.t_start, self.first = time.perf_counter(), epoch

    def on_epoch_end(self, trainer, event: EpochEvent) -> None:
        spent = time.perf_counter() - self.t_start
        if event.epoch < trainer.epochs and spent + spent / (event.epoch - self.first + 1) > self.budget_s:
            trainer.stop_run(Status.PAUSED, f"Paused after epoch {event.epoch} of {trainer.epochs}; the next call "
                                            f"goes on from there.")


class Forgetting(Acting):
    """The source task (a saved run's replay sample) before and after, once the run is tested: the
    source model, then this body read by the source's own head."""

    def on_result(self, trainer, result: RunResult) -> None:
        source = trainer.source
        if result.test is None or source is None:
            return
        kw = dict(device=trainer.device, amp=trainer.amp, stop=trainer.stop)
        try:
            before, after = source.accuracy(source.model, **kw), source.accuracy(trainer.model, **kw)
        except StopRequested:
            return
        result.source_accuracy_before, result.source_accuracy_after = before, after


class ChanceCheck(Acting):
    """A run that ended normally but learned nothing says so, in its message and notes."""

    def __init__(self, lr: float):
        self.lr = lr

    def on_result(self, trainer, result: RunResult) -> None:
        if result.status not in CONTINUABLE:
            return
        kept = next((e.val_accuracy for e in result.history if e.epoch == result.best_epoch), None)
        note = health.chance_note(kept, trainer.data.val.labels, self.lr)
        if note is not None:
            result.message += " It is no better than chance."
            result.notes.append(note)


class SaveRun(Callback):
    """Saves the finished run into ``out`` (by the main process): weights, config, metrics, replay
    sample, card, and, for a run that ended at an epoch boundary, its last state to continue from."""

    step_interval_s = math.inf

    def __init__(self, out: str | Path):
        self.out, self.end_state = Path(out), None

    def on_fit_end(self, trainer) -> None:
        # Before KeepBest puts the best epoch's weights back (run_callbacks orders them so).
        if trainer.history and trainer.status in CONTINUABLE:
            self.end_state = LoopState(trainer.state_dict())

    def on_result(self, trainer, result: RunResult) -> None:
        if trainer.history:
            trainer.fire("on_phase", "saving")
            result.seconds = time.perf_counter() - trainer.t_start  # metrics.json: the time so far
            result.checkpoint = self.save(trainer, result)

    def save(self, trainer, result: RunResult, out: str | Path | None = None) -> Path:
        """Write the run into ``out`` (default: this callback's folder), whole or not at all."""
        out = Path(out or self.out)
        # What actually ran, not "automatic": evaluation on another machine then reproduces it.
        world = distributed.world()
        config = {**trainer.cfg.to_dict(), "augment": trainer.augment, "precision_used": PRECISION_NAMES[trainer.amp],
                  "world_size": world, "effective_batch_size": trainer.batch_size * world,
                  "lr_scaling": "none: --batch-size is the global batch, split over the processes "
                                f"({trainer.batch_size} each), and lr applies to it as given"}
        # One folder, written under a temporary name and renamed when whole: a kill mid-save
        # leaves no run rather than half of one (tlcore.runs.atomic).
        with atomic_folder(out) as tmp:
            write_run(tmp, trainer.model, trainer.data.classes, config=config,
                      metrics=result.metrics(trainer.data.describe()))
            save_replay(tmp, trainer.data)
            if self.end_state is not None:
                save_end_state(tmp, self.end_state)
            write_card(tmp, name=out.name)
        return out


def run_callbacks(cfg: RunConfig, callbacks: list[Callback] = (), *, out: str | Path | None = None,
                  budget_s: float | None = None) -> list[Callback]:
    """The callbacks of a run as ``cfg`` describes it, around the caller's ``callbacks``.

    Hooks fire in this order. At the end of fitting SaveRun takes the last epoch's state before
    KeepBest restores the best epoch's weights; a result gets its forgetting and chance notes
    before SaveRun writes it; Divergence hears a step after the watchers, who then chart a
    blow-up before the run ends on it.
    """
    ending: list[Callback] = [Forgetting(), ChanceCheck(cfg.lr), *([SaveRun(out)] if out is not None else [])]
    acting: list[Callback] = [GradualUnfreezing(cfg)] if cfg.unfreeze_every > 0 else []
    if budget_s is not None:
        acting.append(TimeBudget(budget_s))
    return [*ending, *fit_callbacks([*acting, *callbacks], lr=cfg.lr, patience=cfg.early_stopping)]


def fit_callbacks(callbacks: list[Callback] = (), *, lr: float, patience: int = 0) -> list[Callback]:
    """What every fit has, around ``callbacks``: the best epoch kept (early stopping after
    ``patience`` epochs), and a diverging loss caught (its advice names ``lr``). ``train``, the
    tutorial's API and the Compare tab's probes all fit with these."""
    return [KeepBest(patience), *callbacks, Divergence(lr)]
