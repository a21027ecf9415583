"""Draw tab: sketch a digit and watch the model's guess update as you draw; teach the model your
handwriting (a job of the session, as a training is: one at a time, and Stop reaches it)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import anyio
import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from ..api import (
    BUNDLED_MNIST, EmptySketch, list_runs, load_replay, load_run, overlay, predict_probs, prepare,
    probability_figure, read_run_config, replay_sample, runs_dir, saliency, saved_run, sketch_batch, Status, teach,
    write_bytes
)
from ..errors import TLCoreError
from ..events import Callback
from . import jobs, zerogpu
from .fair import PerSession, TooMany
from .session import SAVED as SAVED_PREFIX
from .session import RunRecord, Session
from .text import error, escape, info, warn
from .payload import typed

BUNDLED = BUNDLED_MNIST
BUNDLED_LABEL = "bundled: lenet5-mnist"
GALLERY_MAX = 40
_bundled = None  # read-only after loading: the weights never change, so one copy serves all sessions


class DrawTab(NamedTuple):
    model: gr.Dropdown  # which model guesses
    taught: object  # the Teach click's event: a new run exists when it ends
    drawings: list  # what ``drawings_view`` fills: the count, the montage, the download


def bundled_model():
    global _bundled
    if _bundled is None:
        _bundled, _ = load_run(BUNDLED)
    return _bundled


# The sketchpad opens (and comes back after being cleared) with no tool selected; pick the brush
# so the canvas is ready to draw on.
SELECT_BRUSH = """() => {
  // One picker at a time: two at once (a Clear's own event and ours) could both click the brush
  // before it shows as selected, and the second click deselects it.
  if (window.tlcPickingBrush) return;
  window.tlcPickingBrush = true;
  let tries = 0;
  const pick = () => {  // the canvas mounts (or resets) a moment after: keep looking for 3 s
    const b = document.querySelector('#draw-pad button[aria-label="Brush"]');
    if (b && !b.classList.contains('highlight')) { b.click(); window.tlcPickingBrush = false; return; }
    if (++tries < 30) setTimeout(pick, 100); else window.tlcPickingBrush = false;
  };
  pick();
}"""


CLEAR_CANVAS = """() => {
  document.querySelector('#draw-pad button[aria-label="Clear canvas"]')?.click();
  (""" + SELECT_BRUSH + """)();
}"""


@functools.lru_cache(maxsize=4)  # a few saved runs stay loaded (read-only, shared); memory stays bounded
def _saved(folder: str, mtime: float):
    return load_run(folder)[0]


def _saved_folder(choice: str) -> Path:
    """Called on every stroke: looks the one name up rather than listing every run."""
    return saved_run(runs_dir(), choice[len(SAVED_PREFIX):])


def _source(session: Session, choice: str):
    """(model, a function giving its replay sample or None) for a Draw model choice.
    The replay sample is read only when teaching asks for it."""
    if choice in session.runs:
        rec = session.runs[choice]
        return session.runs.model(choice), lambda: replay_sample(rec.data)
    folder = _saved_folder(choice) if choice and choice.startswith(SAVED_PREFIX) else None
    model = _saved(str(folder), folder.stat().st_mtime) if folder else bundled_model()
    return model, lambda: load_replay(folder or BUNDLED, model.classes)


def _model(session: Session, choice: str):
    return _source(session, choice)[0]


EMPTY = (None, None, None, None)  # no guess, no bars, nothing seen, no map: an empty canvas claims nothing


@typed
def predict(session: Session, choice: str, sketch):
    """(label confidences, bar chart, the 28x28 the model saw, no SmoothGrad map: the map shown
    was of an earlier drawing)."""
    canvas = session.canvas
    try:
        model = _model(session, choice)
        x = sketch_batch([sketch], model.spec)
    except EmptySketch:
        return EMPTY
    except TLCoreError as e:
        warn(e)
        return EMPTY
    if x[0, 0].numpy().tobytes() == session.added:  # sent before the canvas cleared, read after the Add
        return EMPTY
    probs = predict_probs(model, x)[0].tolist()
    if session.canvas != canvas:  # the drawing was added (and the canvas cleared) meanwhile: this guess is stale
        return (gr.skip(),) * len(EMPTY)
    classes = model.classes or [str(i) for i in range(len(probs))]
    conf = dict(zip(classes, probs))
    seen = np.kron(x[0, 0].numpy(), np.ones((8, 8), np.uint8))
    return conf, probability_figure(conf), seen, None


@typed
def knows(session: Session, choice: str) -> str:
    """What the chosen model knows, in one line: its classes and the input it reads."""
    try:
        model = _model(session, choice)
    except TLCoreError as e:
        return f"**Not loaded:** {escape(e)}"
    s = model.spec
    classes = ", ".join(model.classes or [])
    return escape(f"This model knows {len(model.classes or [])} classes: {classes} · it reads "
                  f"{s.size}×{s.size} grayscale images.")


@typed
def explain(session: Session, choice: str, sketch):
    """The SmoothGrad map of the predicted class over what the model saw."""
    try:
        model = _model(session, choice)
        x = sketch_batch([sketch], model.spec)
    except EmptySketch:
        info("Draw a digit first.")
        return None
    except TLCoreError as e:
        warn(e)
        return None
    heat = saliency(model, x)[0]
    seen = x[0, 0].numpy()
    if heat.shape != seen.shape:  # the model's input size differs from 28x28: show it at that size
        seen = prepare(x, model.spec)[0, 0].mul(model.spec.std[0]).add(model.spec.mean[0]).clamp(0, 1).mul(255).numpy()
    return overlay(seen, heat, scale=max(1, 224 // heat.shape[0]))


# Each caller (browser tab or API client session) has one prediction running and a few waiting:
# one flooding the endpoint waits behind its own calls, and the others keep their usual waits.
PREDICTIONS = PerSession(running=1, waiting=4)


async def predict_digit(sketch, request: gr.Request = None) -> dict[str, float]:
    """API: an image (file or array) in, the bundled model's label confidences out.

    A blank image gives no confidences; an unreadable one a one-line error, never a traceback;
    a session with too many calls in flight is refused, after a short pause (fair.PerSession).
    """
    try:
        async with PREDICTIONS.turn(request.session_hash if request is not None else None):
            return await anyio.to_thread.run_sync(_predict_digit, sketch)
    except TooMany as e:
        raise error(e, "Too many calls at once") from None


def _predict_digit(sketch) -> dict[str, float]:
    try:
        x = sketch_batch([sketch], bundled_model().spec)
    except EmptySketch:
        return {}
    except TLCoreError as e:
        raise error(e, "Not a drawing") from None
    probs = predict_probs(bundled_model(), x)[0].tolist()
    return {c: p for c, p in zip(bundled_model().classes, probs)}


# -- teach it ---------------------------------------------------------------------------------
def _montage(session: Session) -> np.ndarray | None:
    """The newest drawings in a grid, each captioned with its label (newest first)."""
    d = session.drawings
    if not d:
        return None
    items = list(zip(d.images, d.labels))[::-1][:GALLERY_MAX]
    cell, cap, cols = 56, 14, 10
    rows = (len(items) + cols - 1) // cols
    sheet = Image.new("L", (cols * (cell + 4), rows * (cell + cap + 4)), 255)
    draw = ImageDraw.Draw(sheet)
    for i, (img, label) in enumerate(items):
        x, y = (i % cols) * (cell + 4), (i // cols) * (cell + cap + 4)
        sheet.paste(Image.fromarray(img).resize((cell, cell), Image.Resampling.NEAREST), (x, y))
        draw.text((x + 2, y + cell + 1), label[:9], fill=0)
    return np.asarray(sheet)


def drawings_view(session: Session):
    """(count, montage, download) of the session's drawings (also what a reloaded page shows)."""
    d = session.drawings
    path = None
    if d:
        path = session.folder / "downloads" / "my-drawings.zip"
        write_bytes(path, d.to_zip())
    return d.summary(), _montage(session), gr.update(value=str(path) if path else None, interactive=bool(d))


@typed
def add_drawing(session: Session, choice: str, sketch, label: str | None):
    """Keep the drawing under its label. A refusal raises gr.Error, so the canvas is kept then."""
    if not label:
        raise error("Pick the label of your drawing first.", "Not added")
    try:
        image = session.drawings.add(sketch, label, _model(session, choice).classes)
    except EmptySketch:
        raise error("Draw a digit first.", "Not added") from None
    except TLCoreError as e:
        raise error(e, "Not added") from None
    # The canvas is cleared next (in the browser); the guess is reset here, not left to that
    # clearing's change event, and a prediction still in flight for the old drawing is dropped.
    session.canvas += 1
    session.added = image.tobytes()
    return *drawings_view(session), *EMPTY


def clear_drawings(session: Session):
    session.drawings.clear()
    return drawings_view(session)


@typed
def label_choices(session: Session, choice: str, current: str | None):
    """The chosen model's class names; the label picked so far stays if that model has it."""
    try:
        classes = list(_model(session, choice).classes)
    except TLCoreError:
        return gr.skip()
    return gr.update(choices=classes, value=current if current in classes else None)


def _not_taught(why) -> tuple:
    """(status, model choice) when nothing was taught, and why."""
    return f"**Not taught:** {escape(why)}", gr.skip()


@jobs.job("teaching", refused=_not_taught, waiting=lambda place: (jobs.WAITING.format(place), gr.skip()))
@typed
def teach_it(session: Session, choice: str, progress=gr.Progress()):
    """Fine-tune the current model on the drawings (mixed with its replay sample): a new run."""
    try:
        model, replay = _source(session, choice)
        base = choice if choice in session.runs else choice.split(": ", 1)[-1]
        name = session.runs.new_name(f"taught-{base}")
        folder = session.folder / name
        progress(0, desc="Teaching")
        # A few seconds of LeNet-5: on ZeroGPU it stays on the CPU rather than queue for a GPU call.
        taught = teach(model, session.drawings, replay(), out=folder, device="cpu" if zerogpu.ENABLED else "auto",
                       callbacks=[_Steps(lambda f: progress(f, desc="Teaching"))], stop=session.stop)
    except TLCoreError as e:
        warn(e)
        return _not_taught(e)
    session.add_run(RunRecord(name, taught.result, taught.data, folder))
    stopped = " Stopped early: it keeps its best epoch so far." if taught.result.status == Status.STOPPED else ""
    return (taught.message() + stopped + f" Saved as run `{name}`.",
            gr.update(choices=model_choices(session), value=name))


class _Steps(Callback):
    """Training progress as one fraction, for gr.Progress."""

    def __init__(self, report):
        self.report = report

    def on_step(self, trainer, e):
        self.report(e.fraction)


def build(session_state: gr.State) -> DrawTab:
    """The Draw tab, its model dropdown and teach event named for wiring to the other tabs."""
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(model_choices(Session()), value=BUNDLED_LABEL, label="Model",
                                info="the bundled MNIST LeNet-5, or a run (of this session or saved) on "
                                     "grayscale images, such as digits",
                                elem_id="draw-model")
            known = gr.Markdown(knows(Session(), BUNDLED_LABEL), elem_id="draw-knows")
            pad = gr.Sketchpad(label="Draw a digit", type="numpy", image_mode="RGBA", canvas_size=(420, 420),
                               elem_id="draw-pad",
                               brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"))
        with gr.Column(scale=1):
            label = gr.Label(num_top_classes=3, label="Prediction: draw a digit on the left", elem_id="draw-label")
            bars = gr.Plot(label="All classes")
            with gr.Row():
                # No fixed height: a fixed one cut the bottom rows of the picture under its label.
                seen = gr.Image(label="What the model sees (28×28)", interactive=False, elem_id="draw-seen")
                heat = gr.Image(label="Where it looked (SmoothGrad)", interactive=False, elem_id="draw-heat")
            explain_btn = gr.Button("Show where it looked", size="sm")
    with gr.Accordion("Teach it your handwriting", open=True):
        gr.Markdown("Wrong guess? Pick the right label and add the drawing. Add a few per digit, then "
                    "**Teach it**: the model fine-tunes on your drawings mixed with a sample of its original "
                    "data (so it does not forget), in seconds, and becomes a new run you can pick above.")
        with gr.Row():
            truth = gr.Dropdown([str(i) for i in range(10)], value=None, label="This drawing is a…",
                                elem_id="teach-label", scale=1)
            add_btn = gr.Button("Add to my drawings", elem_id="teach-add", scale=1)
            teach_btn = gr.Button("Teach it", variant="primary", elem_id="teach-go", scale=1)
            teach_stop = gr.Button("Stop", variant="stop", elem_id="teach-stop", scale=0, min_width=80)
        count = gr.Markdown(Session().drawings.summary(), elem_id="teach-count")
        gallery = gr.Image(label="My drawings (newest first)", interactive=False, buttons=[], height=170,
                           elem_id="teach-drawings")
        with gr.Row():
            download = gr.DownloadButton("Download my drawings (ImageFolder zip)", interactive=False, size="sm")
            clear_btn = gr.Button("Clear my drawings", size="sm")
        taught = gr.Markdown(elem_id="teach-status")
    outs = [label, bars, seen, heat]
    explain_btn.click(explain, [session_state, model, pad], heat, api_visibility="private")
    # trigger_mode="always_last": while drawing, only the latest stroke state is computed.
    pad.clear(None, js=SELECT_BRUSH, api_visibility="private")  # its own Clear (trash icon) deselects the brush
    pad.change(predict, [session_state, model, pad], outs, trigger_mode="always_last", api_visibility="private",
               show_progress="hidden")
    model.change(predict, [session_state, model, pad], outs, api_visibility="private") \
        .then(knows, [session_state, model], known, api_visibility="private") \
        .then(label_choices, [session_state, model, truth], truth, api_visibility="private")
    # Once added, the canvas is cleared for the next drawing (by its own Clear button, which keeps the brush).
    add_btn.click(add_drawing, [session_state, model, pad, truth], [count, gallery, download, *outs],
                  api_visibility="private").success(None, js=CLEAR_CANVAS, api_visibility="private")
    clear_btn.click(clear_drawings, session_state, [count, gallery, download], api_visibility="private")
    taught_event = jobs.wire(teach_btn.click, teach_it, [session_state, model], [taught, model],
                             api_visibility="private")
    jobs.wire_stop(teach_stop, session_state, api_visibility="private")
    # The API endpoint: an image in, the bundled model's label confidences out.
    # A file, decoded by tlcore (pixel limits, odd formats, clear errors), not by Gradio.
    api_in = gr.File(type="filepath", visible=False)
    api_out = gr.Label(visible=False)
    gr.Button(visible=False).click(predict_digit, api_in, api_out, api_name="predict_digit",
                                   concurrency_limit=None, show_progress="hidden")
    return DrawTab(model, taught_event, [count, gallery, download])


def refresh_models(session: Session, choice: str):
    """Saved runs may have appeared since the page loaded."""
    choices = model_choices(session)
    return gr.update(choices=choices, value=choice if choice in choices else BUNDLED_LABEL)


def model_choices(session: Session) -> list[str]:
    """The bundled model, this session's runs, then runs saved in the runs folder (newest first):
    only models that read grayscale images. A photo model (ants and bees) read a drawn 0 as "ants 84%"."""
    mine = [name for name, rec in session.runs.items() if rec.data is not None and rec.data.channels == 1]
    saved = [SAVED_PREFIX + f.name for f in list_runs(runs_dir()) if _grayscale(f)]
    return [BUNDLED_LABEL, *mine, *saved]


def _grayscale(folder: Path) -> bool:
    try:
        return read_run_config(folder)["input"]["channels"] == 1
    except TLCoreError:
        return False
