"""ZeroGPU (Hugging Face Spaces): GPU work goes through ``spaces.GPU``, a long run in several calls.

On a ZeroGPU Space a GPU exists only inside a function decorated with ``spaces.GPU``, for at
most its ``duration``, in a forked worker process. So training is split into calls that each
fit: every call trains until its budget and pauses at an epoch boundary (``train``'s
``budget_s``); the next call resumes from the returned state, ending exactly as one run would.
Events stream back as the generator's yields; Stop reaches the worker through a file, since a
threading.Event does not cross the fork. Without ``spaces`` (or off ZeroGPU, where the
decorator returns the function unchanged) the same code runs in this process.
"""
from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..data import ImageData
from ..errors import TLCoreError
from ..events import Recorder, StopToken, stream
from ..result import RunResult, Status
from ..state import LoopState
from ..train import train

try:
    import spaces
except ImportError:  # not on Hugging Face Spaces
    spaces = None

ENABLED = spaces is not None and bool(getattr(spaces.config.Config, "zero_gpu", False))
CALL_S = 60  # the GPU reservation asked for per call
BUDGET_S = 40  # training per call; the rest covers start-up, validation, the test split and saving


def _train_call(cfg: RunConfig, data: ImageData, resume: LoopState | None, stop_file: str, out: str | None,
                budget_s: float):
    """One GPU call: train until the budget, yielding ``(kind, payload)`` events, then
    ``("result", RunResult)`` or ``("error", sentence)``, whatever went wrong in the worker."""
    yield from stream(lambda sink: train(cfg, data=data, callbacks=[Recorder(sink=sink)], stop=StopToken(stop_file),
                                         out=out, budget_s=budget_s, resume=resume))


gpu_call = spaces.GPU(duration=CALL_S)(_train_call) if spaces is not None else _train_call


def train_in_calls(cfg: RunConfig, data: ImageData, *, sink, stop: StopToken, out: str | Path | None = None,
                   budget_s: float | None = None) -> RunResult:
    """Train through as many GPU calls as it takes; events go to ``sink`` as they come.

    ``stop`` must have a ``path`` (the worker watches the file). Raises TLCoreError, with the
    sentence the Train tab shows, for the user's mistakes and for unexpected errors alike.
    """
    if stop.path is None:
        raise ValueError("train_in_calls needs a StopToken with a path: the worker process watches the file")
    resume, budget = None, BUDGET_S if budget_s is None else budget_s
    while True:
        for kind, payload in gpu_call(cfg, data, resume, str(stop.path), str(out) if out else None, budget):
            if kind == "result":
                result = payload
            elif kind == "error":
                raise TLCoreError(payload)
            else:
                sink((kind, payload))
        if result.status is not Status.PAUSED:
            return result
        resume = result.resume  # a stop sent meanwhile is seen at the next call's first step
