"""The Gradio studio. The only package that imports gradio; it talks to tlcore through its API."""
from __future__ import annotations

import gradio as gr

from . import data_tab, model_tab
from .session import Session

TITLE = "Transfer Learning Studio"


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nDoes a pretrained backbone help on your data, and how much? "
                    "Pick data, pick a model, choose what to freeze.")
        session = gr.State(Session())
        with gr.Tab("Data"):
            load, load_in, load_out = data_tab.build(session)
        with gr.Tab("Model"):
            on_backbone, bb_in, bb_out, describe, desc_in, desc_out = model_tab.build(session)
        # First paint: the offline default dataset and model, so the app is useful at once.
        demo.load(load, load_in, load_out).then(on_backbone, bb_in, bb_out).then(describe, desc_in, desc_out)
    return demo
