"""A session's jobs, run in one place: trainings, continuations, learning-rate sweeps, transfer vs
scratch, data-efficiency curves and teachings all take the session's one job slot, wait their
turn in the server's line, run, and let go, through :func:`job` and :func:`in_line`; no handler
takes or frees the slot itself.

A handler is written once, as a plain function or a generator of its outputs, and decorated::

    @job("training", refused=..., waiting=...)
    def start(session, *values): ...     # session.stop: how Stop reaches this job

Called directly (tests, scripts) it runs at once. ``in_line(start)`` is its Gradio handler, an
async generator: it takes the slot (a second job of the session is refused with a sentence
naming the first), waits for its turn as a coroutine (holding no thread; a Stop, a closed tab
or a client's cancel frees its place at once), then runs the handler in a thread of its own,
driven to its end even if no one reads it, which frees the slot when the work lets go. Gradio's
own queue is not used for the wait: it runs no code while an event waits, so a cancelled
waiting event could never give its place back (Gradio calls nothing when it drops one).
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import queue
import threading
from typing import Callable, NamedTuple

import gradio as gr
import torch

from . import zerogpu
from .session import Session
from .slot import Busy, Job
from .text import info, warn

SLOTS = 2 if torch.cuda.is_available() else 1  # jobs running at once in this server
MOST_WAITING = 32  # jobs waiting for their turn, all sessions together; more are refused
POLL_S = 0.1  # how often a waiting job looks at the line, and a handler at its job's outputs
# A job's charts redraw at an epoch's end unless they did less than this ago (its last outputs
# draw every epoch): runs of several epochs a second had the browser redraw both charts each time,
# which kept a core of a 2-core laptop busy and the run itself half as fast.
EPOCH_EVERY_S = 0.5
WITHDRAWN = "Stopped before it began."
WAITING = "Waiting for its turn: place {} in line."  # 1: the next to run


class Kind(NamedTuple):
    name: str  # as a sentence's subject: "A training"
    the: str  # as its object: "the training"
    stopping: str  # what Stop says while it runs


KINDS = {
    "training": Kind("A training", "the training", "Stopping… the best epoch so far is kept."),
    "lr-finder": Kind("A learning-rate sweep", "the learning-rate sweep", "Stopping the learning-rate sweep…"),
    "comparison": Kind("A transfer-vs-scratch comparison", "the comparison",
                       "Stopping… each run keeps its best epoch so far."),
    "curve": Kind("A data-efficiency curve", "the curve", "Stopping… the finished points are kept."),
    "teaching": Kind("A teaching", "the teaching", "Stopping the teaching… an epoch it finished is kept."),
    "lesson": Kind("A lesson step", "the lesson step", "Stopping the lesson… the steps that finished are kept."),
    "ranking": Kind("A ranking of sources", "the ranking", "Stopping the ranking…"),
}
# The refusal when the slot is taken, and the toast when Start is pressed meanwhile.
TAKEN = "{} of this session is already running or waiting for its turn; stop it first."
BUSY = "{} is already running or waiting for its turn: Stop it, or wait for it to end."
ENDED = "This session has ended; reload the page to start again."
FULL = f"{MOST_WAITING} jobs are waiting for their turn already; try again in a few minutes."


def refusal(e: Busy) -> str:
    """The sentence for a job refused because the slot is taken (naming what holds it)."""
    return TAKEN.format(KINDS[e.job.kind].name) if e.job is not None else ENDED


class Line:
    """The server's line: ``slots`` jobs run at once, the others wait first come, first served.

    Thread-safe; a waiting job looks at its place every POLL_S (no event loop is tied to it).
    """

    def __init__(self, slots: int = SLOTS, most_waiting: int = MOST_WAITING):
        self.slots, self.most_waiting = slots, most_waiting
        self._jobs: list[Job] = []
        self._lock = threading.Lock()

    def full(self) -> bool:
        return len(self._jobs) - self.slots >= self.most_waiting

    def join(self, job: Job) -> bool:
        """``job`` joins the end of the line; False when the line is full."""
        with self._lock:
            if self.full():
                return False
            self._jobs.append(job)
            return True

    def place(self, job: Job) -> int:
        """0 when ``job`` may run, else its place among the waiting (1: next)."""
        with self._lock:
            return max(0, self._jobs.index(job) - self.slots + 1) if job in self._jobs else 0

    def leave(self, job: Job) -> None:
        with self._lock:
            if job in self._jobs:
                self._jobs.remove(job)

    def state_dict(self) -> dict:
        with self._lock:
            return {"slots": self.slots, "jobs": [(j.kind, j.running) for j in self._jobs]}


LINE = Line()


class Spec(NamedTuple):
    kind: str
    body: Callable  # (session, *inputs) -> the outputs, or a generator of them
    refused: Callable[[str], tuple]  # the outputs saying why nothing started
    waiting: Callable[[int], tuple] | None  # the outputs while it waits (its place in line)


def _open(session: Session, kind: str) -> Job:
    if not isinstance(session, Session):
        raise Busy(None)
    return session.jobs.open(kind, session.stop_token(as_file=zerogpu.ENABLED))


def job(kind: str, *, refused: Callable[[str], tuple], waiting: Callable[[int], tuple] | None = None):
    """Decorator: ``body(session, *inputs)`` becomes a job of ``kind`` (a key of KINDS); called
    directly it runs at once in the caller's thread, holding the session's slot until it returns."""
    assert kind in KINDS, kind

    def wrap(body):
        if inspect.isgeneratorfunction(body):
            @functools.wraps(body)
            def run(session, *args, **kwargs):
                try:
                    held = _open(session, kind)
                except Busy as e:
                    yield refused(refusal(e))
                    return
                session.jobs.start(held)
                try:
                    yield from body(session, *args, **kwargs)
                finally:
                    session.end_job(held)
        else:
            @functools.wraps(body)
            def run(session, *args, **kwargs):
                try:
                    held = _open(session, kind)
                except Busy as e:
                    return refused(refusal(e))
                session.jobs.start(held)
                try:
                    return body(session, *args, **kwargs)
                finally:
                    session.end_job(held)
        run.job = Spec(kind, body, refused, waiting)
        return run
    return wrap


class _Pump:
    """A job's handler in a thread of its own, driven to its end even when no one reads its
    outputs any more (a closed tab, a cancelled call): the job frees the slot only when its work
    has let go. Runs in a copy of the caller's context (Gradio's request: toasts, progress, ZeroGPU)."""

    def __init__(self, session: Session, held: Job, line: Line, call: Callable):
        self.outputs: queue.Queue = queue.Queue()
        self.finished = threading.Event()  # the handler returned or raised
        self._args = session, held, line, call
        threading.Thread(target=contextvars.copy_context().run, args=(self._run,), name="tlcore-job",
                         daemon=True).start()

    def _run(self) -> None:
        session, held, line, call = self._args
        last = ("end", None)
        try:
            out = call()
            for frame in (out if inspect.isgenerator(out) else [out]):
                self.outputs.put(("frame", frame))
        except BaseException as e:  # handed to the caller, as a handler's error
            last = ("raise", e)
        finally:
            # The slot is free before the caller hears the end: a client may start again at once.
            self.finished.set()
            line.leave(held)
            session.end_job(held)
            self.outputs.put(last)

    async def __aiter__(self):
        while True:
            try:
                what, item = self.outputs.get_nowait()
            except queue.Empty:
                await asyncio.sleep(POLL_S)
                continue
            if what == "end":
                return
            if what == "raise":
                raise item
            yield item


async def _wait_then_run(session: Session, held: Job, spec: Spec, line: Line, call: Callable):
    """Wait for ``held``'s turn in ``line``, then run ``call``: the outputs as they come."""
    pump = None
    try:
        if not line.join(held):
            yield spec.refused(FULL)
            return
        shown = 0
        while (place := line.place(held)) and not held.stop.requested:
            if place != shown and spec.waiting is not None:
                yield spec.waiting(place)
            shown = place
            await asyncio.sleep(POLL_S)
        if not session.jobs.start(held):  # stopped while it waited (Stop, or the tab closed)
            yield spec.refused(WITHDRAWN)
            return
        pump = _Pump(session, held, line, call)
        async for frame in pump:
            yield frame
    finally:
        if pump is None:  # it never ran (refused, stopped or cancelled while waiting): its place goes now
            line.leave(held)
            session.end_job(held)
        elif not pump.finished.is_set():  # cancelled while running: the work stops, and the pump frees the slot
            session.jobs.stop(held)


def in_line(fn, line: Line | None = None):
    """Gradio's handler for ``fn`` (made by :func:`job`): an async generator that takes the
    session's slot, waits in ``line`` (the server's, LINE, unless given), then runs ``fn``'s body."""
    spec: Spec = fn.job

    @functools.wraps(fn)
    async def handler(session, *args, **kwargs):
        try:
            held = _open(session, spec.kind)
        except Busy as e:
            yield spec.refused(refusal(e))
            return
        call = functools.partial(spec.body, session, *args, **kwargs)
        # Closed with the handler: a cancel that closes the handler reaches the wait's ``finally`` now.
        async with contextlib.aclosing(_wait_then_run(session, held, spec, line or LINE, call)) as frames:
            async for frame in frames:
                yield frame
    return handler


def admit(session: Session, *inputs):
    """Gradio's validator for every job's event, run as the request arrives (before it queues): a
    session whose slot is taken is refused at once, with the sentence, however often it presses
    Start or calls the API; so is everyone while the line is full."""
    if not isinstance(session, Session):
        why = ENDED
    elif (held := session.jobs.job) is not None or session.jobs.closed:
        why = refusal(Busy(held))
    else:
        why = FULL if LINE.full() else ""
    return [gr.validate(not why, why), *(gr.validate(True, "") for _ in inputs)]


def wire(trigger, fn, inputs: list, outputs: list, **kwargs):
    """``trigger(in_line(fn), ...)`` with the validator; the line, not Gradio's queue, makes it wait.

    Its outputs show a job's progress in place of Gradio's full overlay (``show_progress="minimal"``):
    a job streams its own status sentence and charts, and the overlay's pulsing border, redrawn every
    frame for as long as the job runs, cost the browser a quarter of a core (a 30 s curve: 7.5 s
    of Chromium's CPU on the 2-core VM) beside the job it was showing."""
    kwargs.setdefault("show_progress", "minimal")
    return trigger(in_line(fn), inputs, outputs, validator=admit, concurrency_limit=None,
                   concurrency_id="jobs", **kwargs)


def stop(session: Session) -> str:
    """Stop this session's job (never another's), whichever it is: the running one, or the one
    waiting for its turn (which then ends at once, its place given back)."""
    held = session.jobs.stop() if isinstance(session, Session) else None
    if held is None:
        return "Nothing is running."
    if not held.running:
        return f"Stopped: {KINDS[held.kind].the} waiting for its turn will not start."
    return KINDS[held.kind].stopping


def said_stop(session: Session) -> str:
    """:func:`stop`, said in a toast as well as returned (the API's answer)."""
    said = stop(session)
    info(said)
    return said


def wire_stop(button, session_state, **kwargs):
    """``button`` stops the session's job. Its sentence is a toast, never the job's own status
    line: a reply arriving after the job's last frame (the two travel apart) would put "Stopping"
    back over the sentence the run ended with. The API gets it from a hidden box. Queued (a toast
    needs the queue's stream) in a group of its own without a limit: it never waits behind a job."""
    said = gr.Textbox(visible=False)
    return button.click(said_stop, session_state, said, concurrency_limit=None, concurrency_id="stop", **kwargs)


def busy(session: Session) -> None:
    """Start pressed while this session has a job: say so in a toast (that press starts nothing:
    the browser does not send it, the API is refused by ``admit``). The press that began the job
    is not answered here."""
    held = session.jobs.job
    if held is not None and session.jobs.busy_for() > 1.0:
        warn(BUSY.format(KINDS[held.kind].name))
