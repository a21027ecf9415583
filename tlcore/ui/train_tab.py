"""Train tab: hyperparameters, Start / Stop, live loss and accuracy charts, progress and ETA.

The run goes through :func:`tlcore.events.stream`: a worker thread trains (in this process, or
through ZeroGPU calls) while the handler, a generator, turns its events into chart updates
about once a second (Gradio streams them). Each handler here is a job of the session
(:mod:`tlcore.ui.jobs`): Stop sets the job's StopToken, which the loop checks every step. The
inputs are made from RunConfig's fields, so the app offers and checks each setting as the CLI does.
"""
from __future__ import annotations

import functools
import inspect
import time
from typing import NamedTuple

import gradio as gr

from ..config import RunConfig
from ..api import (
    HEAD, SUGGESTED, body_frozen as frozen_body, continuable, continue_run, describe_device, load_dataset,
    lr_find, lr_find_figure, pick_device, RunResult, Status, suggested, suggested_for, train, training_figures
)
from ..errors import TLCoreError
from ..events import Recorder, StepEvent, StopToken, stream
from . import fields, jobs, zerogpu
from .session import DEFAULT_DATASET, DEFAULT_FROZEN, RunRecord, Session
from .text import escape, warn
from .payload import typed

UPDATE_EVERY_S = 1.0  # the bar and charts during an epoch (an epoch's end: jobs.EPOCH_EVERY_S)
CHART_NOTE = ("*Training loss sits above validation loss here: training is scored with label smoothing (softer "
              "targets) and, when the body learns, on augmented images (shifted, rotated, zoomed); validation "
              "images are plain and scored without either.*")
MAIN = ("epochs", "batch_size", "lr", "optimizer", "scheduler", "body_lr_mult")
MORE = ("label_smoothing", "augment", "early_stopping", "seed")
KEEP = ("l2sp", "head_l2", "lwf_weight", "lwf_temperature")  # not forgetting the source
UNFREEZE = ("unfreeze_every", "layer_lr_decay")  # gradual unfreezing, discriminative rates
# The /train endpoint's inputs, in this order (callers send them by position; new ones go last).
# A setting added here is offered, named in the API and checked, from its RunConfig field alone.
UNLABELLED = ("semi_supervised",)  # the data's images nobody labelled (tlcore.training.semi)
BALANCE = ("balance",)  # skewed classes (tlcore.training.balance); shown under More
FIELDS = (*MAIN, *MORE, *KEEP, *UNFREEZE, *UNLABELLED, *BALANCE)


class TrainTab(NamedTuple):
    device: gr.Markdown
    inputs: dict[str, gr.components.Component]  # by RunConfig field name
    progress: gr.HTML
    status: gr.Markdown
    train_event: object  # the Start click's event, for chaining
    view: list  # progress, loss chart, accuracy chart, status: what ``cleared`` resets

    @property
    def suggested(self) -> list[gr.components.Component]:
        """The inputs ``suggest`` fills, in SUGGESTED order."""
        return [self.inputs[k] for k in SUGGESTED]


def device_text() -> str:
    return f"**Device:** {describe_device(pick_device('auto'))}"


def _progress_html(done: float, text: str) -> str:
    pct = max(0.0, min(1.0, done)) * 100
    return (f"<div style='border:1px solid #cbd5e1;border-radius:6px;height:14px;overflow:hidden'>"
            f"<div style='width:{pct:.1f}%;height:100%;background:#6366f1'></div></div>"
            f"<div style='margin-top:4px'>{text}</div>")


def suggest(session: Session):
    """Defaults for the current dataset and Model-tab choice, in SUGGESTED order."""
    n = len(session.dataset.train) if session.dataset is not None else 1000
    groups = session.preview.group_names() if session.preview is not None else [HEAD]
    s = suggested(session.backbone, session.weights, session.frozen, groups, n)
    session.suggested = {k: s[k] for k in SUGGESTED}
    return [s[k] for k in SUGGESTED]


@functools.lru_cache(maxsize=1)
def first_suggestion() -> dict:
    """What the tab shows when it opens: the suggestion for the app's first data and model (digits,
    a linear probe on the bundled MNIST LeNet-5), so the page opening overwrites nothing typed meanwhile."""
    s = Session()
    cfg = RunConfig(dataset=DEFAULT_DATASET, backbone=s.backbone, weights=s.weights, preset=None, frozen=s.frozen)
    return {k: v for k, v in suggested_for(cfg, len(load_dataset(DEFAULT_DATASET).train)).items() if k in SUGGESTED}


def body_frozen(session: Session) -> bool:
    """Every group of the session's model but its head is frozen."""
    groups = session.preview.group_names() if session.preview is not None else [*DEFAULT_FROZEN, HEAD]
    return frozen_body(session.frozen, groups)


FROZEN_BODY = dict(interactive=False, info="the body is frozen: only the new head learns")


def body_mult(session: Session):
    """The body's learning-rate multiplier means nothing for a frozen body: greyed out, and says why."""
    if body_frozen(session):
        return gr.update(**FROZEN_BODY)
    return gr.update(interactive=True, info=RunConfig.knob("body_lr_mult").help)


def _first_state(name: str) -> dict:
    """How an input starts, beyond its value (the first model's body is frozen)."""
    return FROZEN_BODY if name == "body_lr_mult" and body_frozen(Session()) else {}


def _setup_key(session: Session) -> tuple:
    return id(session.dataset), session.backbone, session.weights, tuple(session.frozen), session.train_bn


def cleared(session: Session):
    """(progress, loss chart, accuracy chart, status) of a tab with no run, once the data or the
    model changed: the last run's charts would describe something else. An event that changed
    nothing (a list of choices refreshed) leaves them."""
    if session.charts_for in (None, _setup_key(session)) or session.jobs.job is not None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    session.charts_for = None
    return _progress_html(0, "Ready."), None, None, ""


def resuggest(session: Session):
    """After the data or the model changed: the settings the change moves. A value the user typed
    stays where the suggestion did not move (the page just opened, a change that keeps the recipe)."""
    before = session.suggested or first_suggestion()
    return [gr.skip() if before[k] == v else v for k, v in zip(SUGGESTED, suggest(session))]


def config(session: Session, values: dict) -> RunConfig:
    """The session's data and model with the tab's settings; raw values, RunConfig checks them."""
    return RunConfig(dataset=session.dataset_label or session.dataset.name, backbone=session.backbone,
                     weights=session.weights, preset=None, frozen=list(session.frozen), train_bn=bool(session.train_bn),
                     **{k: fields.value(k, v) for k, v in values.items()}).validate()


class LiveView:
    """The run as the tab shows it: progress bar, its sentence, the loss and accuracy charts."""

    def __init__(self, history: list | None = None, classes: int | None = None):
        """``history``: the epochs a continued run already has (its chart is one curve); ``classes``:
        how many the data has (chance, 1 / classes, is marked on the accuracy chart)."""
        self.steps, self.epoch_ends, self.unfreezes = [], list(history or []), []
        self.chance = 1 / classes if classes else None
        self.text, self.fraction, self.last = "Loading…", 0.0, 0.0

    def update(self, kind: str, ev) -> bool:
        """Take one engine event; True when the charts should be redrawn now."""
        if kind == "phase":
            phase, f = ev
            if phase != "training":
                self.text = f"{phase.capitalize()}…" + (f" {f:.0%}" if f else "")
        elif kind == "run_start":
            self.text = (f"Training on {ev.device}: {ev.train_size:,} images, {ev.trainable_params:,} of "
                         f"{ev.total_params:,} parameters learn" + (" (features cached)" if ev.feature_cache else ""))
        elif kind == "step":
            self._step(ev)
        elif kind == "epoch_end":
            self.epoch_ends.append(ev)
        elif kind == "unfreeze":
            self.unfreezes.append(ev)
            self.text = f"Epoch {ev.epoch}: {', '.join(ev.thawed)} joined; {', '.join(ev.live)} train"
        now = time.monotonic()
        due = now - self.last >= (jobs.EPOCH_EVERY_S if kind == "epoch_end" else UPDATE_EVERY_S)
        self.last = now if due else self.last
        return due

    def _step(self, ev: StepEvent) -> None:
        self.steps.append((ev.epoch - 1 + ev.step / ev.steps, ev.loss, ev.accuracy))
        self.fraction = ev.fraction
        self.text = (f"Epoch {ev.epoch}/{ev.epochs}, step {ev.step}/{ev.steps} · loss {ev.loss:.4f} · "
                     f"{ev.images_per_second:,.0f} images/s · about {ev.eta_seconds:,.0f} s left")

    def frame(self, text: str | None = None, fraction: float | None = None):
        """(progress, loss chart, accuracy chart)."""
        loss_fig, acc_fig = training_figures(self.steps, self.epoch_ends, self.unfreezes, self.chance)
        return _progress_html(self.fraction if fraction is None else fraction, text or self.text), loss_fig, acc_fig


def _run(cfg: RunConfig, session: Session, stop: StopToken, folder, sink) -> RunResult:
    if zerogpu.ENABLED:  # a Hugging Face ZeroGPU Space: the run goes through spaces.GPU calls
        return zerogpu.train_in_calls(cfg, session.dataset, sink=sink, stop=stop, out=folder)
    return train(cfg, data=session.dataset, callbacks=[Recorder(sink=sink)], stop=stop, out=folder)


def _not_started(why) -> tuple:
    """The tab's outputs when a run does not start, and why."""
    return _progress_html(0, "Not started."), gr.skip(), gr.skip(), f"**Not started:** {escape(why)}", gr.skip()


def _waiting(place: int) -> tuple:
    """The tab's outputs while the run waits for its turn (behind other sessions' jobs)."""
    return _progress_html(0, jobs.WAITING.format(place)), gr.skip(), gr.skip(), "", gr.skip()


@jobs.job("training", refused=_not_started, waiting=_waiting)
def start(session: Session, *values):
    """Stream a training run: (progress, loss chart, accuracy chart, status, run list)."""
    if session.dataset is None:
        warn("Load a dataset on the Data tab first.")
        yield _progress_html(0, "No dataset."), gr.skip(), gr.skip(), "", gr.skip()
        return
    try:
        cfg = config(session, dict(zip(FIELDS, values)))
    except (TLCoreError, TypeError, ValueError) as e:
        warn(e)
        yield _progress_html(0, "Not started."), None, None, f"**Not started:** {escape(e)}", gr.skip()
        return
    name = session.runs.new_name(f"{session.dataset.name}-{session.backbone.replace(':', '-')}")
    session.charts_for = _setup_key(session)
    yield from _stream(session, name, session.dataset,
                       lambda stop, folder, sink: _run(cfg, session, stop, folder, sink))


def _stream(session: Session, name: str, data, work, history: list | None = None):
    """Run ``work(stop, folder, sink)`` as run ``name``, streaming the tab's outputs as it goes."""
    view = LiveView(history, len(data.classes) if data is not None else None)
    folder, stop = session.folder / name, session.stop  # the job's (on ZeroGPU a file too)
    for kind, payload in stream(lambda sink: work(stop, folder, sink)):
        if kind in ("result", "error"):
            outcome = kind, payload
        elif kind == "notice":  # said now; the run's result keeps it among its notes
            warn(payload)
        elif view.update(kind, payload):
            yield *view.frame(), "", gr.skip()
    if outcome[0] == "error":
        warn(outcome[1])
        yield *view.frame("Not finished."), f"**Not finished:** {escape(outcome[1])}", gr.skip()
        return
    yield _finished(session, name, outcome[1], data, folder, view)


@jobs.job("training", refused=_not_started, waiting=_waiting)
@typed
def continue_training(session: Session, run: str | None, epochs):
    """Stream run ``run`` trained on to ``epochs`` in all, as a new run (tlcore.training.resume)."""
    rec = session.runs.get(run or "")
    try:
        if rec is None:
            raise TLCoreError("Pick a run of this session to continue (Evaluate tab, Run).")
        state = continuable(rec.folder, epochs)  # refuse now, before anything starts, if it cannot continue
        epochs = int(epochs)
    except TLCoreError as e:
        warn(e)
        yield _not_started(e)
        return
    name = session.runs.new_name(f"{run.split('-', 1)[-1]}-to{epochs}")
    yield from _stream(session, name, rec.data, lambda stop, folder, sink: continue_run(
        rec.folder, epochs, data=rec.data, callbacks=[Recorder(sink=sink)], stop=stop, out=folder, state=state),
        history=rec.result.history)


def ending(r: RunResult) -> str:
    """How the run ended, said once: its message leads with its first words in bold ("**Completed
    30 epochs**; kept epoch 28 ..."); only a failure, whose message is the advice, is named first."""
    if r.status is Status.FAILED:
        return f"**Failed.** {escape(r.message)}"
    head, sep, rest = r.message.partition(";")
    return f"**{escape(head)}**{sep}{escape(rest)}"


def _finished(session: Session, name: str, r: RunResult, data, folder, view: LiveView):
    if r.history:
        session.add_run(RunRecord(name, r, data, folder))
    acc = f" · test accuracy **{r.test.accuracy:.2%}**" if r.test else ""
    status = f"{ending(r)}{acc}" + (f" · saved as run `{name}`" if r.history else "")
    if r.source_accuracy_after is not None:
        status += f" · source task {r.source_accuracy_before:.1%} → **{r.source_accuracy_after:.1%}**"
    status += "".join(f"\n\n*Note:* {escape(n)}" for n in r.notes)
    if r.status is Status.FAILED:
        warn(r.message)
    # The sentence is said once, under the bar; the bar's own line says only how it ended.
    done = f"{r.status.capitalize()} after {r.seconds:.0f} s."
    return (*view.frame(done, 1.0 if r.status is Status.COMPLETED else None), status,
            gr.update(choices=list(session.runs), value=name if r.history else None))


# The API names /train's inputs after their fields (Gradio reads the signature), though start
# takes them as *values: one list, FIELDS, makes the inputs, their order and their names.
start.__signature__ = inspect.Signature(
    [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("session", *FIELDS)])


def _no_suggestion(why) -> tuple:
    """The finder's outputs when it suggests nothing, and why: (chart, its sentence, the Use button)."""
    return gr.skip(), f"**No suggestion:** {escape(why)}", gr.update(interactive=False)


@jobs.job("lr-finder", refused=_no_suggestion,
          waiting=lambda place: (gr.skip(), jobs.WAITING.format(place), gr.skip()))
def find_lr(session: Session, *values):
    """The learning-rate sweep (tlcore.training.lr_finder) for the tab's settings, on a copy of the model:
    (chart, its sentence, the Use button). A job of its own: Stop reaches it, Start waits for it."""
    try:
        if session.dataset is None:
            raise TLCoreError("Load a dataset on the Data tab first.")
        cfg = config(session, dict(zip(FIELDS, values)))
        found = lr_find(cfg, data=session.dataset, stop=session.stop)
    except (TLCoreError, TypeError, ValueError) as e:
        warn(e)
        return _no_suggestion(e)
    session.lr_found = float(f"{found.suggested_lr:.3g}")
    note = (f"**Suggested learning rate: {session.lr_found:g}** (for the head) · rule: {escape(found.rule)} · "
            f"{len(found.lrs)} steps on a copy of the model; nothing was trained.")
    return lr_find_figure(found), note, gr.update(interactive=True, value=f"Use {session.lr_found:g}")


def use_lr(session: Session):
    """The last suggestion into the learning-rate box."""
    if session.lr_found is None:
        warn("Find a learning rate first.")
        return gr.skip()
    return session.lr_found


def build(session_state: gr.State, runs_dropdown: gr.Dropdown) -> TrainTab:
    device = gr.Markdown(device_text())
    # The first values shown: what the app suggests for its default data and model.
    first = first_suggestion()
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            # Start and Stop first: seen without scrolling at 1280x720, beside the progress and status.
            with gr.Row():
                start_btn = gr.Button("Start training", variant="primary", elem_id="train-start")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="train-stop")
            inputs = {k: fields.component(k, first.get(k, ...), **_first_state(k)) for k in MAIN}
            with gr.Accordion("More", open=False):
                inputs.update({k: fields.component(k, first.get(k, ...)) for k in (*MORE, *BALANCE)})
            with gr.Accordion("Not forgetting the source (L2-SP, LwF)", open=False):
                inputs.update({k: fields.component(k) for k in KEEP})
            with gr.Accordion("Gradual unfreezing", open=False):
                inputs.update({k: fields.component(k) for k in UNFREEZE})
            with gr.Accordion("Images nobody labelled (semi-supervised)", open=False, elem_id="train-unlabelled"):
                inputs.update({k: fields.component(k) for k in UNLABELLED})
            suggest_btn = gr.Button("Suggest settings for this data and model", size="sm")
            with gr.Row():
                find_btn = gr.Button("Find learning rate", size="sm")
                use_btn = gr.Button("Use this", size="sm", interactive=False)
        with gr.Column(scale=2):
            progress = gr.HTML(_progress_html(0, "Ready."))
            status = gr.Markdown()
            with gr.Row():
                loss_plot = gr.Plot(label="Loss")
                acc_plot = gr.Plot(label="Accuracy")
            gr.Markdown(CHART_NOTE, elem_id="chart-note")
            lr_note = gr.Markdown(elem_id="lr-note")
            lr_plot = gr.Plot(label="Learning-rate finder")
    suggest_btn.click(suggest, session_state, [inputs[k] for k in SUGGESTED], api_name="suggest_settings")
    train_event = jobs.wire(start_btn.click, start, [session_state, *(inputs[k] for k in FIELDS)],
                            [progress, loss_plot, acc_plot, status, runs_dropdown], api_name="train")
    jobs.wire(find_btn.click, find_lr, [session_state, *(inputs[k] for k in FIELDS)], [lr_plot, lr_note, use_btn],
              api_name="find_lr")
    use_btn.click(use_lr, session_state, inputs["lr"], api_visibility="private")
    jobs.wire_stop(stop_btn, session_state, api_name="stop")
    # Queued (a toast needs the queue's stream), in a group of its own without a limit: it never
    # waits behind a job. Its status line would be overwritten by the running one's next update.
    start_btn.click(jobs.busy, session_state, None, concurrency_limit=None, concurrency_id="busy-note",
                    trigger_mode="multiple", api_visibility="private")
    return TrainTab(device, inputs, progress, status, train_event,
                    [progress, loss_plot, acc_plot, status])
