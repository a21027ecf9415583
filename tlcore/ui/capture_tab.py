"""Capture tab: name a few classes, add webcam frames or photos to each, Train (a head on the cached
features of a pretrained body: seconds), then watch the live prediction. The frames become a
dataset like any other (Data tab) and a zip that loads back.

The API endpoints run the same loop for scripts and tests: ``/add_example`` (an image file and a
class name; the counts), ``/train_examples`` (accuracy on a held-out fifth, seconds),
``/predict_example`` (an image file; label confidences), ``/clear_examples``.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import gradio as gr

from ..api import MAX_CAPTURE_CLASSES, MAX_FRAMES, MAX_PER_CLASS
from ..errors import TLCoreError
from .session import Session
from .text import error, escape, warn

DEFAULT_CLASSES = "class 1, class 2"


class CaptureTab(NamedTuple):
    use: object  # "Use these frames as the dataset"'s event: the app shows the new dataset on the Data tab after it


def _names(text) -> list[str]:
    return [n.strip() for n in str(text or "").split(",")]


def counts_text(session: Session) -> str:
    c = session.captured
    parts = " · ".join(f"**{escape(k)}** {n}" for k, n in c.counts().items())
    return (f"{parts} · {len(c)} of {MAX_FRAMES} frames (at most {MAX_PER_CLASS} a class). Frames stay only in this "
            f"session.")


def _strip(session: Session, label: str | None) -> list:
    c = session.captured
    return [(c.images[i], f"{label} {k + 1}") for k, i in enumerate(c.of(label))] if label in c.classes else []


def _view(session: Session, label: str | None):
    """(target choices, counts, the class's strip)."""
    c = session.captured
    label = label if label in c.classes else c.classes[0]
    return gr.update(choices=list(c.classes), value=label), counts_text(session), _strip(session, label)


def rename(session: Session, text: str, label: str | None):
    try:
        session.captured.set_classes(_names(text))
    except TLCoreError as e:
        warn(e)
        return gr.update(value=", ".join(session.captured.classes)), *_view(session, label)
    session.capture_fit = None  # its classes are gone
    return gr.update(value=", ".join(session.captured.classes)), *_view(session, label)


def add_frame(session: Session, files, label: str | None):
    """Chosen photos, added to ``label``."""
    c, added = session.captured, 0
    try:
        if label not in c.classes:
            raise TLCoreError(f"Choose a class to add to ({', '.join(c.classes)}).")
        if not files:
            raise TLCoreError("Choose photos first (several at once if you like).")
        for path in files if isinstance(files, (list, tuple)) else [files]:
            c.add(Path(path).read_bytes(), label)
            added += 1
    except (TLCoreError, OSError) as e:
        warn(f"Added {added}; then: {e}" if added else e)
    return counts_text(session), _strip(session, label), None


def record_frame(session: Session, frame, recording: bool, label: str | None):
    """While *Record into this class* is ticked, each frame the camera streams joins ``label``."""
    if not recording or frame is None:
        return gr.skip(), gr.skip()
    try:
        session.captured.add(frame, label)
    except TLCoreError:
        return gr.skip(), gr.skip()  # full, or an unknown class: the counts already say so
    return counts_text(session), _strip(session, label)


def delete_frame(session: Session, label: str | None, evt: gr.SelectData):
    rows = session.captured.of(label) if label in session.captured.classes else []
    if evt is not None and 0 <= evt.index < len(rows):
        session.captured.remove(rows[evt.index])
    return counts_text(session), _strip(session, label)


def train_frames(session: Session) -> str:
    try:
        fit = session.captured.train()
    except TLCoreError as e:
        return f"**Not trained:** {escape(e)}"
    session.capture_fit = fit
    scored = (f"**{fit.accuracy:.0%}** of the {fit.held_out} frames held out (a fifth of each class) were right"
              if fit.accuracy is not None else "too few frames to hold any out")
    return (f"Trained in {fit.seconds:.1f} s on {len(session.captured)} frames: {scored}; the head was then fitted "
            f"on every frame for the live prediction.")


def predict_live(session: Session, frame):
    if frame is None or session.capture_fit is None:
        return {} if frame is None else gr.skip()
    try:
        return session.captured.predict(session.capture_fit, frame)
    except TLCoreError:
        return gr.skip()


def use_as_dataset(session: Session):
    try:
        session.dataset = session.captured.to_data()
    except TLCoreError as e:
        warn(e)
        return gr.skip()
    session.dataset_label = "my captures"
    return f"The frames are now the dataset: {len(session.dataset.train)} to train, {len(session.dataset.test)} to test."


def download(session: Session):
    try:
        data = session.captured.to_zip()
    except TLCoreError as e:
        warn(e)
        return None
    path = session.folder / "my-captures.zip"
    path.write_bytes(data)
    return str(path)


# -- the API ----------------------------------------------------------------------------------------
def api_add(session: Session, image: str, label: str) -> tuple[Session, dict]:
    try:
        session.captured.add(Path(str(image)).read_bytes(), str(label))
    except (TLCoreError, OSError) as e:
        raise error(e, "Not added") from None
    return session, session.captured.counts()


def api_classes(session: Session, names: str) -> tuple[Session, dict]:
    try:
        session.captured.set_classes(_names(names))
    except TLCoreError as e:
        raise error(e, "Refused") from None
    session.capture_fit = None
    return session, session.captured.counts()


def api_train(session: Session) -> tuple[Session, dict]:
    try:
        session.capture_fit = session.captured.train()
    except TLCoreError as e:
        raise error(e, "Not trained") from None
    return session, session.capture_fit.to_dict()


def api_predict(session: Session, image: str) -> dict[str, float]:
    if session.capture_fit is None:
        raise error("Train first (/train_examples).", "Not trained")
    try:
        return session.captured.predict(session.capture_fit, Path(str(image)).read_bytes())
    except (TLCoreError, OSError) as e:
        raise error(e, "Not an image") from None


def api_clear(session: Session) -> tuple[Session, dict]:
    session.captured.clear()
    session.capture_fit = None
    return session, session.captured.counts()


def build(session_state: gr.State) -> CaptureTab:
    gr.Markdown(f"Make your own classes: name them, hold each thing up to the camera and record frames (or add "
                f"photos), "
                f"then **Train**: a pretrained photo model (EfficientNet-Lite0, ImageNet) sees each frame once as it "
                f"arrives, so only its last layer trains, in seconds. At most {MAX_CAPTURE_CLASSES} classes, "
                f"{MAX_PER_CLASS} frames a class.")
    names = gr.Textbox(DEFAULT_CLASSES, label="Classes (comma-separated: edit to rename, add or remove; Enter to "
                                              "apply)", elem_id="capture-classes")
    with gr.Row():
        with gr.Column():
            target = gr.Radio(_names(DEFAULT_CLASSES), value=_names(DEFAULT_CLASSES)[0], label="Add frames to",
                              elem_id="capture-target")
            cam = gr.Image(sources=["webcam"], type="numpy", streaming=True, label="Camera", elem_id="capture-cam",
                           height=300)
            recording = gr.Checkbox(False, label="Record into this class (a frame every half second while the "
                                                 "camera streams)", elem_id="capture-record")
            files = gr.File(file_count="multiple", file_types=["image"], label="Or photos (several at once)",
                            type="filepath", elem_id="capture-files")
            add_btn = gr.Button("Add the photos to this class", elem_id="capture-add")
        with gr.Column():
            counts = gr.Markdown(elem_id="capture-counts")
            strip = gr.Gallery(label="This class's frames (click one to delete it)", columns=6, height=220,
                               allow_preview=False, elem_id="capture-strip")
            with gr.Row():
                train_btn = gr.Button("Train", variant="primary", elem_id="capture-train")
                clear_btn = gr.Button("Clear all frames", elem_id="capture-clear")
            trained = gr.Markdown(elem_id="capture-trained")
            live_cam = gr.Image(sources=["webcam"], type="numpy", streaming=True, label="Live", height=240,
                                elem_id="capture-live")
            live = gr.Label(label="Prediction", elem_id="capture-prediction")
            with gr.Row():
                use_btn = gr.Button("Use these frames as the dataset", elem_id="capture-use")
                down_btn = gr.DownloadButton("Download as a zip", elem_id="capture-download")
            used = gr.Markdown(elem_id="capture-used")
    private = dict(api_visibility="private")
    names.submit(rename, [session_state, names, target], [names, target, counts, strip], **private)
    target.change(lambda s, lab: (counts_text(s), _strip(s, lab)), [session_state, target], [counts, strip], **private)
    add_btn.click(add_frame, [session_state, files, target], [counts, strip, files], **private)
    cam.stream(record_frame, [session_state, cam, recording, target], [counts, strip], stream_every=0.5,
               concurrency_limit=None, show_progress="hidden", **private)
    strip.select(delete_frame, [session_state, target], [counts, strip], **private)
    train_btn.click(train_frames, session_state, trained, **private)
    clear_btn.click(lambda s: (api_clear(s), _view(s, None))[1], session_state, [target, counts, strip], **private)
    live_cam.stream(predict_live, [session_state, live_cam], live, stream_every=0.3, concurrency_limit=None,
                    show_progress="hidden", **private)
    use_event = use_btn.click(use_as_dataset, session_state, used, **private)
    down_btn.click(download, session_state, down_btn, **private)
    _api(session_state)
    return CaptureTab(use_event)


def _api(session_state: gr.State) -> None:
    """Hidden components behind the loop's endpoints (each call of a client shares its session)."""
    image, label, out, probs = (gr.File(type="filepath", visible=False), gr.Textbox(visible=False),
                                gr.JSON(visible=False), gr.Label(visible=False))
    gr.Button(visible=False).click(api_classes, [session_state, label], [session_state, out], api_name="set_classes")
    gr.Button(visible=False).click(api_add, [session_state, image, label], [session_state, out], api_name="add_example")
    gr.Button(visible=False).click(api_train, session_state, [session_state, out], api_name="train_examples")
    gr.Button(visible=False).click(api_predict, [session_state, image], probs, api_name="predict_example")
    gr.Button(visible=False).click(api_clear, session_state, [session_state, out], api_name="clear_examples")
