"""Continue a saved run to more epochs, from the state it saved at its last epoch.

The weights, the optimizer's moments, the schedule, the data order and the random streams go
on exactly where they were: a run of 2 epochs continued to 4 ends bitwise equal to a run of 4
when its schedule does not depend on the run's length (constant, step). A onecycle or cosine
schedule was planned for the first length and has ended; the added epochs run a new one over
themselves (a warm restart, as SGDR does), and the run says so.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..runs.atomic import check_target
from ..config import RunConfig
from ..data import ImageData
from ..errors import TLCoreError
from ..events import Callback, StopToken
from .callbacks import run_callbacks
from .result import RunResult
from ..runs.folder import read_run_config
from .state import LoopState, load_end_state
from .loop import Trainer, load_run_data

PLANNED = ("onecycle", "cosine")  # schedules shaped by the run's length


def continuable(folder: str | Path, epochs) -> LoopState:
    """The run's saved state, if it can be continued to ``epochs`` in all; else TLCoreError saying why."""
    epochs = RunConfig.check(epochs=epochs)["epochs"]
    state = load_end_state(folder)
    if epochs <= state.epochs_done:
        raise TLCoreError(f"{Path(folder).name} has trained {state.epochs_done} epochs already: ask for more "
                          f"than {state.epochs_done}.")
    return state


def continue_run(folder: str | Path, epochs: int, *, data: ImageData | None = None,
                 callbacks: list[Callback] = (), stop: StopToken | None = None,
                 out: str | Path | None = None, state: LoopState | None = None) -> RunResult:
    """Train the run saved in ``folder`` on to ``epochs`` in all; save it into ``out`` (a new
    folder: the original stays as it was). Refuses (TLCoreError) before any training when the
    run has no state, its files changed, or ``data`` is not its data. ``state``: what
    :func:`continuable` gave for it (not read twice)."""
    meta = read_run_config(folder)
    state = state or continuable(folder, epochs)
    if out is not None:
        check_target(out)
    done = state.epochs_done
    cfg = dataclasses.replace(RunConfig.from_saved(meta["run"]), epochs=epochs).validate()
    # The data before the model: a mismatch is refused before any backbone is built or feature cached.
    data = data if data is not None else load_run_data(cfg)
    if list(data.classes) != list(meta["classes"]):
        raise TLCoreError(f"These data have classes {data.classes}; the run was trained on {meta['classes']}.")
    trainer = Trainer(cfg, callbacks=run_callbacks(cfg, callbacks, out=out), stop=stop)
    if cfg.scheduler in PLANNED:
        trainer.schedule_epochs = epochs - done
        trainer.notes.append(f"The {cfg.scheduler} schedule was planned for {done} epochs and had ended; epochs "
                             f"{done + 1}-{epochs} run a new one (a warm restart).")
    if trainer.setup(data, resume=state, announce=True):
        trainer.fit()
    return trainer.finish()
