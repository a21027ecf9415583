"""Sessions do not get in each other's way: one job waiting or running per session, Stop
reaching only its own, a refused ZeroGPU call going on on the CPU, and a tab closed during a
ZeroGPU run stopping its worker (issue #17)."""
from __future__ import annotations

import threading
import time

import gradio as gr
import pytest
import torch

from tlcore.config import RunConfig
from tlcore.events import StopToken
from tlcore.training.train import train
from tlcore.ui import jobs, train_tab, zerogpu
from tlcore.ui.session import Session, delete_session
from tlcore.ui.slot import STOPS

from conftest import quick, run_async

# /train's inputs after the session, in train_tab.FIELDS order: a few epochs of LeNet-5 on digits.
SETTINGS = dict(epochs=3, batch_size=64, lr=0.05, optimizer="sgd", scheduler="onecycle", body_lr_mult=1.0,
                label_smoothing=0.1, augment="off", early_stopping=0, seed=0)


def values(**kw) -> list:
    """/train's inputs: these settings, RunConfig's defaults for the others."""
    chosen = {**SETTINGS, **kw}
    return [chosen[k] if k in chosen else getattr(RunConfig(), k) for k in train_tab.FIELDS]


def test_a_second_start_is_refused_while_one_waits_or_runs(digits):
    """Gradio runs ``admit`` as the request arrives, before it queues: while the session's job
    waits for its turn or runs, another Start is refused at once, with the sentence."""
    s = Session(dataset=digits)
    inputs = values()
    first = jobs.admit(s, *inputs)
    assert all(v["is_valid"] for v in first) and len(first) == 1 + len(inputs)
    held = s.jobs.open("training", StopToken())  # the first, waiting for its turn
    second = jobs.admit(s, *inputs)
    assert not second[0]["is_valid"] and second[0]["message"] == jobs.TAKEN.format("A training")
    assert s.jobs.start(held) and not jobs.admit(s, *inputs)[0]["is_valid"]  # its turn came: it runs
    s.end_job(held)
    assert jobs.admit(Session(), *inputs)[0]["is_valid"] and jobs.admit(s, *inputs)[0]["is_valid"]


async def _rest(frames) -> list:
    return [f async for f in frames]


def test_stop_reaches_only_its_own_session(digits):
    """B's training waits behind A's in the line; B's Stop ends B's (its place given back at once)
    and leaves A's run alone; B may Start again, and trains its own run after A's."""
    a, b = Session(dataset=digits), Session(dataset=digits)
    train = jobs.in_line(train_tab.start, jobs.Line(slots=1))

    async def main():
        run_a = train(a, *values(epochs=4))
        first = await anext(run_a)  # A's turn came at once: it trains
        waiting_b = train(b, *values())
        waited = await anext(waiting_b)  # B's waits behind it
        assert "place 1 in line" in waited[0] and a.jobs.job.running and not b.jobs.job.running
        assert jobs.stop(b).startswith("Stopped: the training waiting")
        withdrawn = await _rest(waiting_b)
        assert withdrawn[-1][3] == f"**Not started:** {jobs.WITHDRAWN}" and b.jobs.job is None
        assert not a.stop.requested and jobs.stop(b) == "Nothing is running."
        own_b = train(b, *values(epochs=2, seed=1))
        assert "place 1 in line" in (await anext(own_b))[0]
        *_, last = await _rest(run_a)
        assert first[3] == "" and last[3].startswith("**Completed ") and [*a.runs] == ["1-digits-lenet5"]
        *_, own = await _rest(own_b)  # A's ended: B's turn
        return last, own

    last, own = run_async(main())
    assert len(a.runs["1-digits-lenet5"].result.history) == 4
    assert own[3].startswith("**Completed ") and [*b.runs] == ["1-digits-lenet5"] and b.stop is None
    assert b.runs["1-digits-lenet5"].result.config.epochs == 2 and a.runs["1-digits-lenet5"].result.config.epochs == 4
    for s in (a, b):
        delete_session(s)


def spaces_refusal(title: str, message: str) -> gr.Error:
    """The error spaces.GPU raises when it declines a call: its own constructor when installed."""
    try:
        from spaces.zero.gradio import error
    except ImportError:
        return gr.Error(message, title=title, print_exception=False)
    return error(title, message)


REFUSED = {"quota": ("ZeroGPU quota exceeded", "You have exceeded your free ZeroGPU quota (60s requested vs. 12s "
                                               "left). Try again in 21:04:11."),
           "no GPU": ("ZeroGPU client error", "No GPU was available")}


def refused_after(calls: int, err: gr.Error):
    """spaces.GPU's wrapper refusing from call ``calls + 1`` on: it raises at the first event,
    before the worker starts, as ``schedule`` does."""
    made = []

    def call(*args):
        made.append(args)
        if len(made) > calls:
            raise err
        yield from zerogpu.gpu_call(*args)

    def generator(*args):  # a generator, as the decorated function is: nothing runs until iterated
        return call(*args)

    return generator, made


@pytest.fixture(scope="module")
def whole(digits):
    return train(quick(epochs=4), data=digits)


@pytest.mark.parametrize("why, granted", [("quota", 2), ("no GPU", 0)])
def test_a_refused_gpu_call_goes_on_on_the_cpu(digits, whole, tmp_path, why, granted):
    """Refused after two calls (the quota spent mid-run) or at the first (no GPU free): the run
    goes on in this process on the CPU, from where the calls left it, and ends as one
    uninterrupted run would, with a one-line notice as it happens and among the result's notes."""
    title, message = REFUSED[why]
    call, made = refused_after(granted, spaces_refusal(title, message))
    got = []
    r = zerogpu.train_in_calls(quick(epochs=4), digits, sink=got.append, stop=StopToken(tmp_path / "stop"), budget_s=0,
                               call=call)
    notice = zerogpu.ON_CPU.format(why=title)
    assert len(made) == granted + 1 and [p for k, p in got if k == "notice"] == [notice] and notice in r.notes
    assert r.status == "completed" and [e.epoch for k, e in got if k == "epoch_end"] == [1, 2, 3, 4]
    assert [k for k, _ in got].count("run_start") == 1
    a, b = whole.model.state_dict(), r.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and r.test.accuracy == whole.test.accuracy


def test_other_gradio_errors_are_not_taken_for_a_refusal(digits, tmp_path):
    """A worker that died mid-call is a failure to report, not a reason to train again on the CPU."""
    call, _ = refused_after(0, spaces_refusal("ZeroGPU worker error", "GPU task aborted"))
    with pytest.raises(gr.Error, match="GPU task aborted"):
        zerogpu.train_in_calls(quick(epochs=4), digits, sink=lambda e: None, stop=StopToken(tmp_path / "stop"), call=call)


def test_closing_the_tab_stops_a_zerogpu_run(digits, monkeypatch):
    """On ZeroGPU the worker sees Stop only as a file. The closing tab writes it and deletes the
    session's folder: the file must outlive the folder, the run must stop, and the folder (which
    the stopping run saves into) must be gone once it has."""
    monkeypatch.setattr(zerogpu, "ENABLED", True)  # on a Space: the run goes through spaces.GPU calls
    s = Session(dataset=digits)
    frames, started = [], threading.Event()

    def watch():
        for f in train_tab.start(s, *values(epochs=200)):
            frames.append(f)
            started.set()

    t0 = time.monotonic()
    tab = threading.Thread(target=watch, daemon=True)
    tab.start()
    assert started.wait(60), "the run never began"
    stop, folder = s.stop, s.folder
    assert stop.path is not None and not stop.path.is_relative_to(folder)
    delete_session(s)
    tab.join(60)
    assert not tab.is_alive(), "the worker never saw the stop"
    assert frames[-1][3].startswith("**Stopped ") and time.monotonic() - t0 < 60
    assert not folder.exists() and not stop.path.exists() and s.stop is None
    assert not any(STOPS.glob(stop.path.name))


def test_a_flooding_session_waits_on_itself_not_on_the_others():
    """Twenty calls at once from one session: one runs, four wait, fifteen are refused; another
    session's call goes in at once, ahead of the flood's waiting ones; nothing stays counted."""
    import asyncio

    from tlcore.ui.fair import PerSession, TooMany

    shares, entered = PerSession(running=1, waiting=4, refuse_after_s=0), []

    async def call(session: str, gate: asyncio.Event):
        async with shares.turn(session):
            entered.append(session)
            await gate.wait()

    async def main():
        gate = asyncio.Event()
        flood = [asyncio.create_task(call("flood", gate)) for _ in range(20)]
        await asyncio.sleep(0.01)
        assert sum(t.done() for t in flood) == 15 and entered == ["flood"]
        assert shares.state_dict()["calls"] == {"flood": 5}
        other = asyncio.create_task(call("other", gate))
        await asyncio.sleep(0.01)
        assert entered == ["flood", "other"]  # in at once, while four of the flood's still wait
        gate.set()
        await asyncio.gather(other, *flood, return_exceptions=True)
        refused = [t.exception() for t in flood if t.exception() is not None]
        assert len(refused) == 15 and all(isinstance(e, TooMany) for e in refused)
        assert entered.count("flood") == 5 and shares.state_dict()["calls"] == {}

    run_async(main())


def test_a_stopped_waiting_job_gives_its_place_back_at_once():
    """Start, Stop while it waits: it ends at once and the session's place is free; the next Start
    takes it (and waits), and a third is refused. (Counting withdrawn Starts once let a third in.)"""
    line, other = jobs.Line(slots=1), Session()
    running = other.jobs.open("training", StopToken())  # another session's job holds the one slot
    assert line.join(running) and other.jobs.start(running)
    s, train = Session(), jobs.in_line(train_tab.start, line)

    async def main():
        first = train(s, *values())
        assert "place 1 in line" in (await anext(first))[0]
        assert jobs.stop(s).startswith("Stopped: the training waiting")
        assert (await _rest(first))[-1][3] == f"**Not started:** {jobs.WITHDRAWN}"
        assert s.jobs.job is None and line.state_dict()["jobs"] == [("training", True)]
        second = train(s, *values())
        assert "place 1 in line" in (await anext(second))[0] and not jobs.admit(s, *values())[0]["is_valid"]
        await second.aclose()  # Gradio closes the handler of a call that went away
        assert s.jobs.job is None and line.state_dict()["jobs"] == [("training", True)]

    run_async(main())
