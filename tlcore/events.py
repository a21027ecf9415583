"""How the training loop talks to whoever watches it: callbacks with named hooks (Lightning's way).

The loop knows hook names, not listeners. The CLI draws a progress bar from these, the app
draws live plots, tests record them. Every hook is a no-op by default and receives the
trainer first (so a callback can reach the model and the optimizer), then the event.
Callbacks also act (Lightning's ``EarlyStopping``): keeping the best epoch, unfreezing, ending
a diverging run and saving are callbacks (tlcore.training.callbacks) that stop the loop with
``trainer.stop_run(status, message)``. :func:`stream` carries the events of a run in another
thread to a generator, for the app.
"""
from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TLCoreError

log = logging.getLogger(__name__)


@dataclass
class RunInfo:
    """Fired once, when training is about to start."""

    device: str  # e.g. "CUDA: NVIDIA H200" or "CPU, 2 threads"
    epochs: int
    steps_per_epoch: int
    train_size: int
    val_size: int
    test_size: int
    classes: list[str]
    trainable_params: int
    total_params: int
    feature_cache: bool  # the frozen body's features were computed once
    notes: list[str] = field(default_factory=list)  # about the settings (a regularizer that cannot act)


@dataclass
class StepEvent:
    """Fired about twice a second within an epoch (and at each epoch's last step)."""

    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    steps: int  # steps in the epoch
    loss: float  # mean training loss since the epoch began
    accuracy: float  # training accuracy since the epoch began
    lr: float
    images_per_second: float
    eta_seconds: float  # for the whole run
    epochs: int  # in the whole run

    @property
    def done(self) -> int:
        """Steps done in the whole run."""
        return (self.epoch - 1) * self.steps + self.step

    @property
    def fraction(self) -> float:
        """How much of the whole run is done, 0 to 1."""
        return self.done / (self.steps * self.epochs)


@dataclass
class EpochEvent:
    """Fired after each epoch's validation."""

    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    images_per_second: float
    seconds: float  # since training began
    eta_seconds: float
    best: bool  # the best validation loss so far: these weights are kept


@dataclass
class ValidationEvent:
    """Fired after an epoch's validation, before the epoch is recorded."""

    epoch: int
    loss: float  # mean cross-entropy on the validation split
    accuracy: float
    best: bool = False  # set by the callback that keeps this epoch's weights (KeepBest)


@dataclass
class UnfreezeEvent:
    """Fired when gradual unfreezing lets more layer groups train, just before ``epoch`` begins."""

    epoch: int  # the first epoch they train in (1-based); on the charts, at x = epoch - 1
    thawed: list[str]  # the groups that joined
    live: list[str]  # every group training from now on, head first
    lrs: dict[str, float]  # each live group's planned (discriminative) rate


@dataclass
class RunEnd:
    """Fired once at the end, whatever happened."""

    status: str  # a tlcore.training.result.Status: completed, early-stopped, stopped (on request) or failed
    message: str  # one plain sentence
    best_epoch: int
    history: list[EpochEvent] = field(default_factory=list)


class Callback:
    """Base class: override the hooks you need. ``trainer`` is the running
    :class:`tlcore.training.loop.Trainer` (its ``model``, ``step.optimizer``, ``history``...).

    Hooks fire in the order of the trainer's callbacks. A callback acts through the trainer:
    ``trainer.stop_run(status, message)`` ends the loop (the first stop stands).
    """

    # The most seconds between two step events this callback wants (0: every step). Reading
    # the running loss is a CPU-GPU sync, so the trainer makes an event no more often than
    # its most eager callback asks (math.inf: it asks for none of its own).
    step_interval_s: float = 0.5
    # Watchers hear only the main process of a distributed run; a callback that acts on the
    # loop must act alike on every process, or the processes would part ways.
    every_rank: bool = False
    # Where the trainer's state_dict() holds this callback's state_dict() (None: it has none).
    state_key: str | None = None

    def on_phase(self, trainer, phase: str, fraction: float | None = None) -> None:
        """A phase begins or progresses: loading, caching features, training, evaluating, saving."""

    def on_setup(self, trainer) -> None:
        """The model is built, frozen and placed, its batches are ready; the optimizer is next."""

    def on_run_start(self, trainer, info: RunInfo) -> None:
        """Data and model are ready; the first step is next."""

    def on_epoch_start(self, trainer, epoch: int) -> None:
        """An epoch's first step is next."""

    def on_loss(self, trainer, event: StepEvent) -> None:
        """The running loss was read, before ``on_step`` reports it: a run stopped here reports it not."""

    def on_step(self, trainer, event: StepEvent) -> None:
        """Progress within an epoch."""

    def on_validation_end(self, trainer, event: ValidationEvent) -> None:
        """An epoch was validated; a run stopped here does not record the epoch."""

    def on_epoch_end(self, trainer, event: EpochEvent) -> None:
        """An epoch and its validation are done."""

    def on_unfreeze(self, trainer, event: UnfreezeEvent) -> None:
        """Gradual unfreezing: more layer groups train from this epoch on."""

    def on_fit_end(self, trainer) -> None:
        """The loop is over (completed, stopped, failed or paused: see ``trainer.status``)."""

    def on_result(self, trainer, result) -> None:
        """A finished run's result (a tlcore.training.result.RunResult) is made: add to it, save it."""

    def on_run_end(self, trainer, event: RunEnd) -> None:
        """The run ended (completed, stopped, or failed)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class StopRequested(Exception):
    """Raised inside a long phase (evaluating) when a stop was requested; the loop catches it."""


class StopToken:
    """A thread-safe stop request the loop checks every step.

    With ``path``, the request is also a file, so it reaches a run in another process (ZeroGPU
    trains in a forked worker, where this process's Event is never set): a token made there
    with the same path sees the stop within a step.
    """

    def __init__(self, path: str | Path | None = None):
        self._event = threading.Event()
        self.path = Path(path) if path else None

    def stop(self) -> None:
        self._event.set()
        if self.path is not None:
            self.path.touch()

    @property
    def requested(self) -> bool:
        return self._event.is_set() or (self.path is not None and self.path.exists())

    def check(self) -> None:
        if self.requested:
            raise StopRequested()


class Recorder(Callback):
    """Passes every event a watcher sees (phase, run_start, step, epoch_end, unfreeze, run_end), in
    order, to ``sink`` as ``(kind, payload)``: a list by default (tests, history), or a queue's
    ``put`` (the app's live charts)."""

    def __init__(self, sink=None):
        self.events: list[tuple[str, object]] = []
        self.sink = sink or self.events.append

    def on_phase(self, trainer, phase, fraction=None):
        self.sink(("phase", (phase, fraction)))

    def on_run_start(self, trainer, info):
        self.sink(("run_start", info))

    def on_step(self, trainer, event):
        self.sink(("step", event))

    def on_epoch_end(self, trainer, event):
        self.sink(("epoch_end", event))

    def on_unfreeze(self, trainer, event):
        self.sink(("unfreeze", event))

    def on_run_end(self, trainer, event):
        self.sink(("run_end", event))


def unexpected_message(e: BaseException) -> str:
    """What a user is told about an error that is our bug (its traceback goes to the log)."""
    return f"Training failed unexpectedly ({type(e).__name__}). The app is still running."


def stream(work: Callable[[Callable], object], poll_s: float = 0.2) -> Iterator[tuple[str, object]]:
    """Run ``work(sink)`` in a thread; yield each ``(kind, payload)`` it passes to ``sink`` as it
    comes, then ``("result", its return value)`` or ``("error", a plain sentence)``.

    A TLCoreError's own words are the sentence; any other exception is logged with its
    traceback and told as :func:`unexpected_message`. The app's Train tab and each ZeroGPU
    call both drain a run this way, so neither can lose an error.
    """
    events: queue.Queue = queue.Queue()
    box: dict = {}

    def run():
        try:
            box["result"] = work(events.put)
        except TLCoreError as e:
            box["error"] = str(e)
        except Exception as e:  # our bug: keep the app up, log the traceback, tell the user plainly
            log.exception("training failed")
            box["error"] = unexpected_message(e)

    # The worker runs in a copy of the caller's context: Gradio's request lives in a context
    # variable, and spaces.GPU reads it there to charge the visitor's own quota, not the Space's.
    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="tlcore-stream", daemon=True)
    worker.start()
    while worker.is_alive() or not events.empty():
        try:
            yield events.get(timeout=poll_s)
        except queue.Empty:
            pass
    worker.join()
    yield ("error", box["error"]) if "error" in box else ("result", box["result"])
