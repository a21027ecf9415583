"""``train(cfg)``: fine-tune a TransferNet on an ImageData, firing events as it goes.

The pieces are elsewhere, one concept each: :mod:`tlcore.training.loop` (set up, fit, finish),
:mod:`tlcore.training.callbacks` (what a run does besides stepping: keep the best epoch, unfreeze,
catch divergence, pause, save), :mod:`tlcore.training.step` (the one weight update),
:mod:`tlcore.training.objective` (the loss), :mod:`tlcore.training.state` (a paused run, in memory
and on disk), :mod:`tlcore.device` (device and precision), :mod:`tlcore.training.optim`
(optimizer and schedule).
"""
from __future__ import annotations

from pathlib import Path

from ..runs.atomic import check_target
from ..config import RunConfig
from ..data import ImageData
from ..events import Callback, StopToken
from ..models import TransferNet
from .callbacks import run_callbacks
from .result import RunResult
from .state import LoopState
from .loop import Trainer, load_run_data
from .semi import with_pseudo_labels


def semi_data(trainer: Trainer, data: ImageData | None) -> ImageData:
    """The run's data with its unlabelled images labelled (tlcore.training.semi), once."""
    data = data if data is not None else load_run_data(trainer.cfg)
    if data.pseudo is not None:  # labelled already (the CLI does it to size the suggested settings)
        return data
    trainer.fire("on_phase", "labelling the unlabelled images")
    return with_pseudo_labels(data, trainer.cfg, trainer.stop,
                              progress=lambda p: trainer.fire("on_phase", "labelling the unlabelled images", p))


def train(cfg: RunConfig, *, data: ImageData | None = None, callbacks: list[Callback] = (),
          stop: StopToken | None = None, out: str | Path | None = None, start: TransferNet | None = None,
          budget_s: float | None = None, resume: LoopState | None = None) -> RunResult:
    """Fine-tune as ``cfg`` says; save the run into ``out`` if given.

    ``data`` skips loading (the app passes what it has loaded). ``start`` continues from a model
    (a copy; ``cfg``'s freezing still applies) instead of building ``cfg.backbone``.
    ``callbacks`` watch the run, and may act on it (``trainer.stop_run``).
    ``budget_s`` splits a long run into calls that fit a time limit (ZeroGPU's): the run pauses
    at the epoch boundary that would overrun it, with ``result.resume``; ``train(cfg, data=data,
    resume=result.resume)`` goes on and ends exactly as one uninterrupted run would.
    """
    if out is not None:
        check_target(out)  # a folder it may not replace is refused now, not after the training
    cfg = cfg.validate()  # before its settings choose the callbacks
    trainer = Trainer(cfg, callbacks=run_callbacks(cfg, callbacks, out=out, budget_s=budget_s), stop=stop)
    if cfg.semi_supervised is not None:  # the pool labelled first: the run trains on what it was given
        data = semi_data(trainer, data)
    if trainer.setup(data, start=start, resume=resume):
        trainer.fit()
    return trainer.finish()
