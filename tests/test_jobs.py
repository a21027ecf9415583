"""A session's jobs (issue #23): every kind takes the session's one slot, a second is refused with
a sentence naming the first, Stop reaches each kind (Teach it included), and a job that goes away
(its call cancelled while it waits or runs) gives its place back. Through the tabs' handlers and
``jobs.in_line``, the handler Gradio runs; the real server's cancel is in test_fair_api.py."""
from __future__ import annotations

import asyncio
import copy
import threading
import time

import gradio as gr
import pytest

from conftest import digit_canvas, run_async
from tlcore.config import RunConfig
from tlcore.events import StopToken
from tlcore.ui import compare_tab, draw_tab, jobs, rank_panel, train_tab
from tlcore.ui.session import Session, delete_session

DIGITS = [str(i) for i in range(10)]


def values(**kw) -> list:
    """/train's inputs: RunConfig's defaults but ``kw``."""
    return [kw.get(k, getattr(RunConfig(), k)) for k in train_tab.FIELDS]


@pytest.fixture
def session(digits):
    s = Session(dataset=digits, dataset_label="digits")
    for d in "1477" * 2:
        s.drawings.add(digit_canvas(d), d, DIGITS)
    yield s
    delete_session(s)


async def _rest(frames) -> list:
    return [f async for f in frames]


def _said(out) -> str:
    """Everything a handler's outputs say, as one text (a function's outputs, or a generator's)."""
    frames = list(out) if not isinstance(out, tuple) else [out]
    return " ".join(str(v) for frame in frames for v in frame)


# Every job the app runs, with inputs that would start it.
JOBS = {
    "training": lambda s: train_tab.start(s, *values()),
    "continuing": lambda s: train_tab.continue_training(s, "1-digits-lenet5", 4),
    "lr-finder": lambda s: train_tab.find_lr(s, *values()),
    "comparison": lambda s: compare_tab.run_duel(s),
    "curve": lambda s: compare_tab.run_curve(s, "1, all", 1, ["linear-probe"]),
    "teaching": lambda s: draw_tab.teach_it(s, draw_tab.BUNDLED_LABEL),
    "ranking": lambda s: rank_panel.run_rank(s, list(rank_panel.CANDIDATES)),
}


@pytest.mark.parametrize("job", JOBS)
def test_every_job_is_refused_while_another_holds_the_slot(session, job):
    """Whatever holds the session's slot, a job of any kind is refused with the sentence naming it,
    and nothing of it runs: the holder keeps the slot, no run is added."""
    holder = "teaching" if job != "teaching" else "training"
    held = session.jobs.open(holder, StopToken())
    said = _said(JOBS[job](session))
    assert jobs.TAKEN.format(jobs.KINDS[holder].name) in said, said
    assert session.jobs.job is held and not session.runs and not held.stop.requested


def test_teach_it_during_a_training_is_refused_with_a_sentence(session):
    """Teach it bypassed the slot: a teaching during a training ran two jobs in one session."""
    frames = train_tab.start(session, *values(epochs=30))
    next(frames)  # the training runs
    taken = jobs.TAKEN.format("A training")
    assert taken == "A training of this session is already running or waiting for its turn; stop it first."
    assert draw_tab.teach_it(session, draw_tab.BUNDLED_LABEL)[0] == f"**Not taught:** {taken}"
    refused = jobs.admit(session, draw_tab.BUNDLED_LABEL)  # the Teach event's validator says it as it arrives
    assert not refused[0]["is_valid"] and refused[0]["message"] == taken
    assert jobs.stop(session) == jobs.KINDS["training"].stopping
    *_, last = frames
    assert last[3].startswith("**Stopped ") and session.jobs.job is None
    assert jobs.admit(session, draw_tab.BUNDLED_LABEL)[0]["is_valid"]  # free: it may teach now


def test_stop_ends_a_running_teach(session):
    """Stop reached every job but Teach it. Pressed during the teaching's first epoch (from another
    thread, as the Stop button's handler runs), the teaching ends there, nothing is taught, and the
    session is free again."""
    stepping, said, steps = threading.Event(), [], []

    def progress(fraction, desc=None):  # the handler's gr.Progress: 0 as it begins, then at every step
        steps.append(fraction)
        if fraction > 0:
            stepping.set()

    def press_stop():
        if stepping.wait(120):
            said.append(jobs.stop(session))
            steps.append("stop")

    threading.Thread(target=press_stop, daemon=True).start()
    teach = jobs.in_line(draw_tab.teach_it, jobs.Line(slots=1))
    out = run_async(_rest(teach(session, draw_tab.BUNDLED_LABEL, progress)))
    assert said == ["Stopping the teaching… an epoch it finished is kept."]
    assert out[-1][0].startswith("**Not taught:** Stopped at epoch 1"), out[-1][0]
    assert len(steps) - steps.index("stop") <= 3  # within a step or two of Stop, not four epochs later
    assert session.jobs.job is None and not session.runs and jobs.admit(session, draw_tab.BUNDLED_LABEL)[0]["is_valid"]


def _blocked_line() -> jobs.Line:
    """A one-slot line whose slot another session's job holds: the next job waits."""
    line, other = jobs.Line(slots=1), Session()
    running = other.jobs.open("training", StopToken())
    assert line.join(running) and other.jobs.start(running)
    return line


def test_a_cancelled_waiting_job_gives_its_place_back(session):
    """A client cancelling a call that waits (gradio_client's job.cancel(): Gradio cancels the task
    running the handler) frees the session's place at once: it is no longer counted as waiting."""
    line = _blocked_line()

    async def main():
        seen = asyncio.Event()

        async def call():
            async for frame in jobs.in_line(train_tab.start, line)(session, *values()):
                assert "place 1 in line" in frame[0]
                seen.set()

        task = asyncio.create_task(call())
        await asyncio.wait_for(seen.wait(), 30)
        assert session.jobs.job is not None and not jobs.admit(session, *values())[0]["is_valid"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(main())
    assert session.jobs.job is None and line.state_dict()["jobs"] == [("training", True)]
    assert jobs.admit(session, *values())[0]["is_valid"]


def test_a_cancelled_running_job_stops_and_frees_the_slot_when_its_work_lets_go(session):
    """Cancelled while it runs, a job is stopped (nobody waits for it any more), and keeps the slot
    until its work has let go (it still writes the run's folder), then frees it."""
    line = jobs.Line(slots=1)

    async def main():
        running = asyncio.Event()

        async def call():
            async for frame in jobs.in_line(train_tab.start, line)(session, *values(epochs=200)):
                if "Epoch" in frame[0]:
                    running.set()

        task = asyncio.create_task(call())
        await asyncio.wait_for(running.wait(), 60)
        held = session.jobs.job
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return held

    held = run_async(main())
    assert held.stop.requested
    t0 = time.monotonic()
    while session.jobs.job is not None and time.monotonic() - t0 < 30:
        time.sleep(0.1)
    assert session.jobs.job is None and line.state_dict()["jobs"] == []
    assert [r.result.status for r in session.runs.values()] == ["stopped"]  # its best epoch kept


def test_each_visitor_gets_a_session_of_its_own():
    """Gradio deep-copies the State's first Session for each visitor: no slot, lock, run or folder
    is shared, and each part says what it holds."""
    first = Session()
    visitor = copy.deepcopy(first)
    held = visitor.jobs.open("teaching", StopToken())
    other = copy.deepcopy(first).jobs.open("training", StopToken())  # its own lock and slot
    visitor.runs.new_name("x")
    assert first.jobs.job is None and other is not held and first.runs.started == 0
    state = visitor.state_dict()
    assert state["jobs"]["kind"] == "teaching" and not state["jobs"]["running"]
    assert state["runs"]["started"] == 1 and state["home"] == {"path": None, "exists": False}
    assert state["model"]["backbone"] == "lenet5" and first.state_dict()["jobs"]["kind"] is None


@pytest.fixture(scope="module")
def studio():
    """The app as built (not served), once for the tests that read its wiring."""
    from tlcore.ui import build_app

    return build_app()


def test_no_stop_button_writes_over_what_its_job_shows(studio):
    """Every Stop's sentence is a toast (a queued event, its answer in a hidden box for the API):
    its reply and the job's last frame travel apart, so a reply written into the job's status line
    could arrive after the run's last words and put "Stopping…" back over them (seen in CI)."""
    stops = {b._id for b in studio.blocks.values() if isinstance(b, gr.Button) and str(b.value).startswith("Stop")}
    assert len(stops) >= 5  # Train, Draw's Teach it, Compare's two, the lesson's steps
    jobs_outputs = {o._id for f in studio.fns.values() if f.concurrency_id == "jobs" for o in f.outputs}
    for f in studio.fns.values():
        if any(target in stops for target, _ in f.targets):
            assert f.queue and f.concurrency_limit is None, f.name
            assert all(not o.visible and o._id not in jobs_outputs for o in f.outputs), f.name


def test_every_job_shows_its_progress_without_the_pulsing_overlay(studio):
    """A job streams its own status line and charts; Gradio's full overlay would pulse a border over
    each of its outputs, redrawn every frame for as long as it runs (a quarter of a core of the
    browser's CPU during a curve on the 2-core VM). Every job's event shows minimal progress."""
    job_events = [f for f in studio.fns.values() if f.concurrency_id == "jobs"]
    assert len(job_events) >= 9  # train, the sweep, continue, duel, curve, teach, three lesson steps, rank
    assert {f.name: f.show_progress for f in job_events} == {f.name: "minimal" for f in job_events}
