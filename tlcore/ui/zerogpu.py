"""ZeroGPU (Hugging Face Spaces): GPU work goes through ``spaces.GPU``, a long run in several calls.

On a ZeroGPU Space a GPU exists only inside a function decorated with ``spaces.GPU``, for at
most its ``duration``, in a forked worker process. So training is split into calls that each
fit: every call trains until its budget and pauses at an epoch boundary (``train``'s
``budget_s``); the next call resumes from the returned state, ending exactly as one run would.
Events stream back as the generator's yields; Stop reaches the worker through a file, since a
threading.Event does not cross the fork. Without ``spaces`` (or off ZeroGPU, where the
decorator returns the function unchanged) the same code runs in this process.

A call can be refused: an unauthenticated visitor gets a few minutes of GPU a day, counted per
IP address (a classroom behind one address spends it within a lesson), or no GPU is free. Then
the run goes on in this process on the CPU, from where the last call left it, with a notice.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import gradio as gr

from ..config import RunConfig
from ..api import ImageData, LoopState, RunResult, Status, train
from ..errors import TLCoreError
from ..events import Recorder, StopToken, stream

try:
    import spaces
except ImportError:  # not on Hugging Face Spaces
    spaces = None

ENABLED = spaces is not None and bool(getattr(spaces.config.Config, "zero_gpu", False))
CALL_S = 60  # the GPU reservation asked for per call
BUDGET_S = 40  # training per call; the rest covers start-up, validation, the test split and saving
# The titles of the gr.Error that spaces.GPU raises when it declines a call (spaces/zero/client.py,
# spaces 0.51): the quota is spent, no GPU became free, or the request cannot be granted.
REFUSALS = ("ZeroGPU quota exceeded", "ZeroGPU queue timeout", "ZeroGPU client error",
            "ZeroGPU pending credits exceeded", "ZeroGPU illegal duration")
ON_CPU = "No GPU for this run ({why}): it goes on on the CPU, more slowly."


def _train_call(cfg: RunConfig, data: ImageData, resume: LoopState | None, stop_file: str, out: str | None,
                budget_s: float):
    """One GPU call: train until the budget, yielding ``(kind, payload)`` events, then
    ``("result", RunResult)`` or ``("error", sentence)``, whatever went wrong in the worker."""
    yield from stream(lambda sink: train(cfg, data=data, callbacks=[Recorder(sink=sink)], stop=StopToken(stop_file),
                                         out=out, budget_s=budget_s, resume=resume))


gpu_call = spaces.GPU(duration=CALL_S)(_train_call) if spaces is not None else _train_call


def refusal(e: BaseException) -> str | None:
    """Why spaces.GPU declined a call (its error's title), or None when ``e`` is something else."""
    title = getattr(e, "title", None)
    return title if isinstance(e, gr.Error) and title in REFUSALS else None


def train_in_calls(cfg: RunConfig, data: ImageData, *, sink, stop: StopToken, out: str | Path | None = None,
                   budget_s: float | None = None, call=None) -> RunResult:
    """Train through as many GPU calls as it takes; events go to ``sink`` as they come.

    ``stop`` must have a ``path`` (the worker watches the file). ``call``: what makes one GPU call
    (``gpu_call``, the decorated ``_train_call``, unless given). A refused call (see REFUSALS)
    sends ``("notice", sentence)`` and the run goes on on the CPU. Raises TLCoreError, with the
    sentence the Train tab shows, for the user's mistakes and for unexpected errors alike.
    """
    if stop.path is None:
        raise ValueError("train_in_calls needs a StopToken with a path: the worker process watches the file")
    resume, budget, call = None, BUDGET_S if budget_s is None else budget_s, call or gpu_call
    while True:
        try:
            result = _one_call(call(cfg, data, resume, str(stop.path), str(out) if out else None, budget), sink)
        except gr.Error as e:
            if (why := refusal(e)) is None:
                raise
            return _on_cpu(cfg, data, resume, sink=sink, stop=stop, out=out, why=why)
        if result.status is not Status.PAUSED:
            return result
        resume = result.resume  # a stop sent meanwhile is seen at the next call's first step


def _one_call(events, sink) -> RunResult:
    """Drain one call's events into ``sink`` (to its end: spaces releases the GPU when the
    generator finishes); its result. A refusal raises at the first event."""
    result = None
    for kind, payload in events:
        if kind == "result":
            result = payload
        elif kind == "error":
            raise TLCoreError(payload)
        else:
            sink((kind, payload))
    if result is None:
        raise TLCoreError("The GPU call ended without a result.")
    return result


def _on_cpu(cfg: RunConfig, data: ImageData, resume: LoopState | None, *, sink, stop: StopToken, out, why: str):
    """The rest of the run in this process, on the CPU (resumed where the last call paused)."""
    note = ON_CPU.format(why=why)
    sink(("notice", note))
    result = train(dataclasses.replace(cfg, device="cpu"), data=data, callbacks=[Recorder(sink=sink)], stop=stop,
                   out=out, resume=resume)
    result.notes.append(note)
    return result
