"""Draw tab: sketch a digit and watch the model's guess update as you draw."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from ..checkpoints import load_run
from ..errors import TLCoreError
from ..evaluate import predict_probs
from ..plots import probability_figure
from ..preprocess import prepare
from ..saliency import overlay, saliency
from ..sketch import EmptySketch, sketch_batch
from .session import Session

BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "models" / "lenet5-mnist"
BUNDLED_LABEL = "bundled: lenet5-mnist"
_bundled = None  # read-only after loading: the weights never change, so one copy serves all sessions


def bundled_model():
    global _bundled
    if _bundled is None:
        _bundled, _ = load_run(BUNDLED)
    return _bundled


def _model(session: Session, choice: str):
    if choice in session.runs:
        return session.runs[choice].result.model
    return bundled_model()


def predict(session: Session, choice: str, sketch):
    """(label confidences, bar chart, the 28x28 the model saw)."""
    try:
        model = _model(session, choice)
        x = sketch_batch([sketch], model.spec)
    except EmptySketch:
        return {"Draw a digit": 1.0}, None, None
    except TLCoreError as e:
        gr.Warning(str(e))
        return {"Draw a digit": 1.0}, None, None
    probs = predict_probs(model, x)[0].tolist()
    classes = model.classes or [str(i) for i in range(len(probs))]
    conf = dict(zip(classes, probs))
    seen = np.kron(x[0, 0].numpy(), np.ones((8, 8), np.uint8))
    return conf, probability_figure(conf), seen


def explain(session: Session, choice: str, sketch):
    """The SmoothGrad map of the predicted class over what the model saw."""
    try:
        model = _model(session, choice)
        x = sketch_batch([sketch], model.spec)
    except EmptySketch:
        gr.Info("Draw a digit first.")
        return None
    except TLCoreError as e:
        gr.Warning(str(e))
        return None
    heat = saliency(model, x)[0]
    seen = x[0, 0].numpy()
    if heat.shape != seen.shape:  # the model's input size differs from 28x28: show it at that size
        seen = prepare(x, model.spec)[0, 0].mul(model.spec.std[0]).add(model.spec.mean[0]).clamp(0, 1).mul(255).numpy()
    return overlay(seen, heat, scale=max(1, 224 // heat.shape[0]))


def predict_digit(sketch) -> dict[str, float]:
    """API: an image (file or array) in, the bundled model's label confidences out."""
    try:
        x = sketch_batch([sketch], bundled_model().spec)
    except EmptySketch:
        return {}
    probs = predict_probs(bundled_model(), x)[0].tolist()
    return {c: p for c, p in zip(bundled_model().classes, probs)}


def build(session_state: gr.State):
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown([BUNDLED_LABEL], value=BUNDLED_LABEL, label="Model",
                                info="the bundled MNIST LeNet-5, or a run trained in this session")
            pad = gr.Sketchpad(label="Draw a digit", type="numpy", image_mode="RGBA", canvas_size=(420, 420),
                               elem_id="draw-pad",
                               brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"))
        with gr.Column(scale=1):
            label = gr.Label(num_top_classes=3, label="Prediction", elem_id="draw-label")
            bars = gr.Plot(label="All classes")
            with gr.Row():
                seen = gr.Image(label="What the model sees (28×28)", height=224, width=224, interactive=False)
                heat = gr.Image(label="Where it looked (SmoothGrad)", height=224, width=224, interactive=False)
            explain_btn = gr.Button("Show where it looked", size="sm")
    outs = [label, bars, seen]
    explain_btn.click(explain, [session_state, model, pad], heat, api_visibility="private")
    # trigger_mode="always_last": while drawing, only the latest stroke state is computed.
    pad.change(predict, [session_state, model, pad], outs, trigger_mode="always_last", api_visibility="private",
               show_progress="hidden")
    model.change(predict, [session_state, model, pad], outs, api_visibility="private")
    # The API endpoint: an image in, the bundled model's label confidences out.
    api_in = gr.Image(type="numpy", image_mode="RGBA", visible=False)
    api_out = gr.Label(visible=False)
    gr.Button(visible=False).click(predict_digit, api_in, api_out, api_name="predict_digit",
                                   concurrency_limit=None, show_progress="hidden")
    return model


def model_choices(session: Session) -> list[str]:
    return [BUNDLED_LABEL, *session.runs]
