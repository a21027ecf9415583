"""Sessions do not get in each other's way: one training queued or running per session, Stop
reaching only its own, a refused ZeroGPU call going on on the CPU, and a tab closed during a
ZeroGPU run stopping its worker (issue #17)."""
from __future__ import annotations

import threading
import time

import gradio as gr
import pytest
import torch

from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.events import StopToken
from tlcore.training.train import train
from tlcore.ui import train_tab, zerogpu
from tlcore.ui.session import STOPS, Session, delete_session

from test_zerogpu import cfg

# /train's inputs after the session, in train_tab.FIELDS order: a few epochs of LeNet-5 on digits.
SETTINGS = dict(epochs=3, batch_size=64, lr=0.05, optimizer="sgd", scheduler="onecycle", body_lr_mult=1.0,
                label_smoothing=0.1, augment="off", early_stopping=0, seed=0)


def values(**kw) -> list:
    """/train's inputs: these settings, RunConfig's defaults for the others."""
    chosen = {**SETTINGS, **kw}
    return [chosen[k] if k in chosen else getattr(RunConfig(), k) for k in train_tab.FIELDS]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_a_second_start_is_refused_while_one_waits_or_runs(digits):
    """Gradio runs ``admit`` as the request arrives, before it queues: the second press of a
    session is refused at once, with the sentence, whether the first still waits or runs."""
    s = Session(dataset=digits)
    inputs = values()
    first, second = train_tab.admit(s, *inputs), train_tab.admit(s, *inputs)
    assert all(v["is_valid"] for v in first) and len(first) == 1 + len(inputs)
    assert not second[0]["is_valid"] and second[0]["message"] == train_tab.QUEUED
    assert s.claim() and not train_tab.admit(s, *inputs)[0]["is_valid"]  # its turn came: it runs
    s.begin(StopToken())
    assert not train_tab.admit(s, *inputs)[0]["is_valid"]
    s.end()
    assert train_tab.admit(Session(), *inputs)[0]["is_valid"] and train_tab.admit(s, *inputs)[0]["is_valid"]


def test_stop_reaches_only_its_own_session(digits):
    """Session B's Stop while A trains: A's run goes on to its end; B's training that waited for
    its turn never starts, and B may Start again (and trains its own run)."""
    a, b = Session(dataset=digits), Session(dataset=digits)
    assert a.admit() and b.admit()
    frames = train_tab.start(a, *values(epochs=4))
    first = next(frames)  # A's turn came; it trains (B's waits behind it on a CPU)
    assert a.stop is not None and b.queued
    assert train_tab.stop_training(b).startswith("Stopped: the training waiting")
    assert not a.stop.requested and train_tab.stop_training(b) == "Nothing is training."
    *_, last = frames
    assert first[3] == "" and last[3].startswith("**Completed.**") and [*a.runs] == ["1-digits-lenet5"]
    assert len(a.runs["1-digits-lenet5"].result.history) == 4
    withdrawn = list(train_tab.start(b, *values()))  # its turn comes after all: it ends at once
    assert withdrawn[-1][3] == f"**Not started:** {train_tab.WITHDRAWN}" and not b.runs
    assert b.admit()
    *_, own = train_tab.start(b, *values(epochs=2, seed=1))
    assert own[3].startswith("**Completed.**") and [*b.runs] == ["1-digits-lenet5"] and b.stop is None
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
    return train(cfg(), data=digits)


@pytest.mark.parametrize("why, granted", [("quota", 2), ("no GPU", 0)])
def test_a_refused_gpu_call_goes_on_on_the_cpu(digits, whole, tmp_path, why, granted):
    """Refused after two calls (the quota spent mid-run) or at the first (no GPU free): the run
    goes on in this process on the CPU, from where the calls left it, and ends as one
    uninterrupted run would, with a one-line notice as it happens and among the result's notes."""
    title, message = REFUSED[why]
    call, made = refused_after(granted, spaces_refusal(title, message))
    got = []
    r = zerogpu.train_in_calls(cfg(), digits, sink=got.append, stop=StopToken(tmp_path / "stop"), budget_s=0,
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
        zerogpu.train_in_calls(cfg(), digits, sink=lambda e: None, stop=StopToken(tmp_path / "stop"), call=call)


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
    assert frames[-1][3].startswith("**Stopped.**") and time.monotonic() - t0 < 60
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

    asyncio.run(main())


def test_a_start_after_a_withdrawn_one_still_holds_the_only_place():
    """Admit, Stop (withdrawn), admit again; the first reaching its turn ends at once, and the
    second still waits: a third Start is refused (one flag forgot the second and admitted it)."""
    s = Session()
    assert s.admit() and s.withdraw() and s.admit()
    assert not s.claim()  # the withdrawn one reaches its turn and ends
    assert s.queued and not s.admit()  # the second still holds the session's place
    assert s.claim() and s.stop is not None
    s.end()
