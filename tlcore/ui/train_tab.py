"""Train tab: hyperparameters, Start / Stop, live loss and accuracy charts, progress and ETA.

Training runs in a worker thread; the event handler is a generator that drains the engine's
events from a queue and yields chart updates about once a second (Gradio streams them).
Stop sets the session's StopToken, which the loop checks every step.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

import gradio as gr
import torch

from ..config import OPTIMIZERS, SCHEDULERS, RunConfig
from ..defaults import suggested
from ..errors import TLCoreError
from ..events import Recorder, StopToken
from ..models import HEAD
from ..plots import training_figures
from ..train import describe_device, pick_device, train
from . import zerogpu
from .session import RunRecord, Session

log = logging.getLogger(__name__)
UPDATE_EVERY_S = 1.0
AUGMENT = {"automatic (off for a frozen body)": None, "on": True, "off": False}


def device_text() -> str:
    return f"**Device:** {describe_device(pick_device('auto'))}"


def _progress_html(done: float, text: str) -> str:
    pct = max(0.0, min(1.0, done)) * 100
    return (f"<div style='border:1px solid #cbd5e1;border-radius:6px;height:14px;overflow:hidden'>"
            f"<div style='width:{pct:.1f}%;height:100%;background:#6366f1'></div></div>"
            f"<div style='margin-top:4px'>{text}</div>")


def suggest(session: Session):
    """Defaults for the current dataset and Model-tab choice."""
    n = len(session.dataset.train) if session.dataset is not None else 1000
    groups = session.preview.group_names() if session.preview is not None else [HEAD]
    s = suggested(session.backbone, session.weights, session.frozen, groups, n)
    return s["epochs"], s["batch_size"], s["lr"], s["optimizer"], s["scheduler"], s["body_lr_mult"]


def start(session: Session, epochs, batch_size, lr, optimizer, scheduler, body_lr_mult, label_smoothing, augment,
          early_stopping, seed):
    """Stream a training run: (progress, loss chart, accuracy chart, status, run list)."""
    if session.dataset is None:
        gr.Warning("Load a dataset on the Data tab first.")
        yield _progress_html(0, "No dataset."), gr.skip(), gr.skip(), "", gr.skip()
        return
    try:
        # Raw values: RunConfig.validate checks and converts them, with the CLI's own messages.
        cfg = RunConfig(
            dataset=session.dataset_label or session.dataset.name, backbone=session.backbone, weights=session.weights,
            preset=None, frozen=list(session.frozen), train_bn=bool(session.train_bn), optimizer=optimizer,
            lr=lr, body_lr_mult=body_lr_mult, scheduler=scheduler, label_smoothing=label_smoothing,
            augment=AUGMENT.get(augment), epochs=epochs, batch_size=batch_size, early_stopping=early_stopping,
            seed=seed).validate()
    except (TLCoreError, TypeError, ValueError) as e:
        gr.Warning(str(e))
        yield _progress_html(0, f"Not started: {e}"), gr.skip(), gr.skip(), "", gr.skip()
        return
    name = session.new_run_name(f"{session.dataset.name}-{session.backbone.replace(':', '-')}")
    folder = session.folder / name
    q: queue.Queue = queue.Queue()
    # On ZeroGPU the stop request is a file too: it reaches the worker process. Elsewhere the
    # in-process flag is enough, and the loop need not ask the file system at every step.
    stop = session.stop = StopToken(session.folder / f".stop-{name}" if zerogpu.ENABLED else None)
    box: dict = {}
    data = session.dataset

    def work():
        try:
            if zerogpu.ENABLED:  # a Hugging Face ZeroGPU Space: the run goes through spaces.GPU calls
                box["result"] = zerogpu.train_in_calls(cfg, data, sink=q.put, stop=stop, out=folder)
            else:
                box["result"] = train(cfg, data=data, callbacks=[Recorder(sink=q.put)], stop=stop, out=folder)
        except TLCoreError as e:
            box["error"] = str(e)
        except Exception as e:  # our bug: keep the app up, log the traceback, tell the user plainly
            log.exception("training failed")
            box["error"] = f"Training failed unexpectedly ({type(e).__name__}). The app is still running."

    worker = threading.Thread(target=work, name=f"train-{name}", daemon=True)
    worker.start()
    steps, epochs_done, info = [], [], None
    text, frac, last = "Loading…", 0.0, 0.0
    while worker.is_alive() or not q.empty():
        try:
            kind, ev = q.get(timeout=0.2)
        except queue.Empty:
            kind = None
        if kind == "phase":
            phase, f = ev
            if phase != "training":
                text = f"{phase.capitalize()}…" + (f" {f:.0%}" if f else "")
        elif kind == "run_start":
            info = ev
            text = (f"Training on {info.device}: {info.train_size:,} images, {info.trainable_params:,} of "
                    f"{info.total_params:,} parameters learn" + (" (features cached)" if info.feature_cache else ""))
        elif kind == "step":
            steps.append((ev.epoch - 1 + ev.step / ev.steps, ev.loss, ev.accuracy))
            frac = ((ev.epoch - 1) * ev.steps + ev.step) / (ev.steps * cfg.epochs)
            text = (f"Epoch {ev.epoch}/{cfg.epochs}, step {ev.step}/{ev.steps} · loss {ev.loss:.4f} · "
                    f"{ev.images_per_second:,.0f} images/s · about {ev.eta_seconds:,.0f} s left")
        elif kind == "epoch_end":
            epochs_done.append(ev)
        now = time.monotonic()
        if kind is not None and (kind == "epoch_end" or now - last >= UPDATE_EVERY_S):
            last = now
            loss_fig, acc_fig = training_figures(steps, epochs_done)
            yield _progress_html(frac, text), loss_fig, acc_fig, "", gr.skip()
    worker.join()
    session.stop = None
    if stop.path is not None:
        stop.path.unlink(missing_ok=True)
    loss_fig, acc_fig = training_figures(steps, epochs_done)
    if "error" in box:
        gr.Warning(box["error"])
        yield _progress_html(frac, box["error"]), loss_fig, acc_fig, f"**Not finished:** {box['error']}", gr.skip()
        return
    r = box["result"]
    if r.history:
        session.add_run(RunRecord(name, r, data, folder))
    acc = f" · test accuracy **{r.test.accuracy:.2%}**" if r.test else ""
    status = f"**{r.status.capitalize()}.** {r.message}{acc}" + (f" · saved as run `{name}`" if r.history else "")
    if r.status == "failed":
        gr.Warning(r.message)
    yield (_progress_html(1.0 if r.status == "completed" else frac, r.message), loss_fig, acc_fig, status,
           gr.update(choices=list(session.runs), value=name if r.history else None))


def stop_training(session: Session) -> str:
    if session.stop is None:
        return "Nothing is training."
    session.stop.stop()
    return "Stopping… the best epoch so far is kept."


def build(session_state: gr.State, runs_dropdown_holder: list):
    # No minimum/maximum/precision on the numbers: Gradio would refuse or round with its own
    # words; RunConfig.validate is the one place that checks, with the CLI's message.
    device = gr.Markdown(device_text())
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            epochs = gr.Number(10, step=1, label="Epochs")
            batch = gr.Number(32, step=1, label="Batch size")
            lr = gr.Number(0.1, label="Learning rate (head)")
            body_mult = gr.Number(1.0, label="Body learning-rate multiplier",
                                  info="0.1 lets a pretrained body learn ten times slower than the new head")
            optimizer = gr.Dropdown(list(OPTIMIZERS), value="sgd", label="Optimizer",
                                    info="sgd = SGD with Nesterov momentum 0.9")
            scheduler = gr.Dropdown(list(SCHEDULERS), value="onecycle", label="Learning-rate schedule",
                                    info="step = the tutorial's StepLR (x0.1 every 7 epochs)")
            with gr.Accordion("More", open=False):
                smoothing = gr.Slider(0, 0.3, value=0.1, step=0.05, label="Label smoothing")
                augment = gr.Dropdown(list(AUGMENT), value=next(iter(AUGMENT)), label="Augmentation")
                early = gr.Number(0, step=1, label="Early stopping patience (epochs, 0 = off)")
                seed = gr.Number(0, step=1, label="Seed")
            suggest_btn = gr.Button("Suggest settings for this data and model", size="sm")
            with gr.Row():
                start_btn = gr.Button("Start training", variant="primary")
                stop_btn = gr.Button("Stop", variant="stop")
        with gr.Column(scale=2):
            progress = gr.HTML(_progress_html(0, "Ready."))
            status = gr.Markdown()
            with gr.Row():
                loss_plot = gr.Plot(label="Loss")
                acc_plot = gr.Plot(label="Accuracy")
    params = [epochs, batch, lr, optimizer, scheduler, body_mult]
    suggest_btn.click(suggest, session_state, params, api_name="suggest_settings")
    runs_dropdown = runs_dropdown_holder[0]
    train_event = start_btn.click(
        start, [session_state, *params, smoothing, augment, early, seed],
        [progress, loss_plot, acc_plot, status, runs_dropdown], api_name="train",
        concurrency_limit=2 if torch.cuda.is_available() else 1, concurrency_id="training")
    stop_btn.click(stop_training, session_state, status, api_name="stop", queue=False)
    return device, train_event, suggest, params
