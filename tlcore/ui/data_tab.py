"""Data tab: pick a registered dataset or upload a zip; see examples, counts and a summary."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import gradio as gr

from ..config import RunConfig
from ..api import (add_unlabelled, class_count_figure, examples, list_datasets, load_dataset, load_unlabelled,
                   suggested_model)
from ..errors import TLCoreError, verify_choice
from . import fields
from .text import escape, warn
from .session import DEFAULT_DATASET, Session, bind

UPLOAD = "upload a zip…"
EXAMPLES_MAX_HEIGHT = 600  # beyond it (many classes) the examples scroll
DEFAULT = DEFAULT_DATASET


class DataTab(NamedTuple):
    inputs: list  # /load_dataset's: session, name, upload, samples per class, validation fraction, seed
    outputs: list  # session, summary, gallery, class counts, the menu, the model hint and its button
    summary: gr.Markdown  # changes whenever another dataset is loaded
    use_model: gr.Button  # "Use ...": the suggested model for this data (the app wires it to the Model tab)
    hint: gr.Markdown  # why that model


def summary_markdown(session: Session) -> str:
    d = session.dataset
    if d is None:
        return "No dataset loaded."
    sp = d.describe()["splits"]
    lines = [
        f"### {escape(d.name)}",
        f"**{len(d.classes)} classes** · {d.channels} channel{'s' if d.channels > 1 else ''} · "
        f"{d.size}×{d.size} px",
        f"train **{sp['train']:,}** · validation **{sp['val']:,}** · test **{sp['test']:,}**",
    ]
    if d.split_note:
        lines.append(d.split_note)  # the engine's own words (its bold marks the test split)
    if d.unlabelled is not None and len(d.unlabelled):
        lines.append(f"**{len(d.unlabelled):,} images without labels** (not a class, in no split): the Train tab's "
                     "*Images nobody labelled* can label them from the source model's features and train on them too.")
    if d.skipped:
        lines.append("Skipped: " + escape(", ".join(f"{n} {why}" for why, n in d.skipped.items())))
    return "\n\n".join(lines)


def load(session: Session, name: str, upload, samples_per_class, val_fraction, seed, request: gr.Request = None):
    """Load the chosen dataset; on any problem say why (a warning and in the summary) and keep the previous one.

    ``name`` must be a registered dataset or the upload choice: a path typed into the API is
    refused, so no caller can make the server read folders it was not given. Every session
    loads data first (the page's first paint does): here it is bound to its tab, to end with it.
    """
    bind(session, request)
    def refuse(why: str):
        warn(why)
        return (session, f"**Not loaded:** {escape(why)}\n\n" + summary_markdown(session), *_view(session)[1:],
                shown_choice(session), *model_hint(session))

    try:
        verify_choice(name, "dataset", [*list_datasets(), UPLOAD])
        if name == UPLOAD and not upload:
            raise TLCoreError("Choose a .zip of class folders to upload first.")
        # The run's own rules and words: 0 (or nothing) samples per class means all of them.
        opts = RunConfig.check(samples_per_class=samples_per_class or None, val_fraction=val_fraction,
                               seed=0 if seed in (None, "") else seed)
        data = load_dataset(str(upload if name == UPLOAD else name), **opts)
    except TLCoreError as e:
        return refuse(str(e))
    session.dataset = data
    # What runs are named after: the dataset, or the uploaded file's own name (not the menu's "upload a zip…").
    session.dataset_label = name if name != UPLOAD else Path(str(upload)).name
    return session, *_view(session), shown_choice(session), *model_hint(session)


def add_pool(session: Session, files):
    """Add uploaded images (image files or zips of them, any layout) to the data's images without labels."""
    d = session.dataset
    try:
        if d is None:
            raise TLCoreError("Load a dataset first: images without labels join the one loaded.")
        if not files:
            raise TLCoreError("Choose image files, or a .zip of images, to add without labels.")
        files = files if isinstance(files, (list, tuple)) else [files]  # one file, or an API payload of another type
        session.dataset = add_unlabelled(d, *load_unlabelled([str(f) for f in files], d.size, d.channels))
    except TLCoreError as e:
        warn(str(e))
        return session, f"**Not added:** {escape(e)}\n\n" + summary_markdown(session)
    return session, summary_markdown(session)


def shown(session: Session):
    """The Data tab's outputs for the dataset the session holds now (one made elsewhere: the Capture tab's)."""
    return session, *_view(session), shown_choice(session), *model_hint(session)


def model_hint(session: Session) -> tuple:
    """(hint, button): a model suggested for this data and why, unless it is the model already chosen."""
    s = suggested_model(session.dataset) if session.dataset is not None else None
    if s is None or (session.backbone, session.weights) == (s["backbone"], s["weights"]):
        return gr.update(value="", visible=False), gr.update(visible=False)
    now = " The model chosen now, LeNet-5, reads 28×28 grey digits, not photos." if session.backbone == "lenet5" else ""
    return (gr.update(value=f"**Suggested model:** {escape(s['why'] + now)}", visible=True),
            gr.update(value=s["label"], visible=True))


def shown_choice(session: Session):
    """The menu shows what is loaded: after a refused choice, the data that stayed (not the choice)."""
    label = session.dataset_label or (session.dataset.name if session.dataset is not None else DEFAULT)
    return gr.update(value=label if label in list_datasets() else UPLOAD)


def _view(session: Session):
    d = session.dataset
    if d is None:
        return summary_markdown(session), [], None
    return summary_markdown(session), _examples(d), class_count_figure(d)


def _examples(d) -> gr.Gallery:
    """Examples with every class in view: one row per class while there are few classes, one image
    per class once there are many. At most five columns: Gradio keeps a thumbnail 100 px wide, so
    eight or ten columns ran off the side of the tab."""
    n = len(d.classes)
    per_class, columns = (5, 5) if n <= 3 else (2, 4) if n <= 7 else (1, 5)
    images = examples(d, per_class=per_class)
    rows = -(-len(images) // columns)
    return gr.Gallery(images, columns=columns, height=min(EXAMPLES_MAX_HEIGHT, 60 + 130 * rows))


def build(session_state: gr.State) -> DataTab:
    with gr.Row():
        with gr.Column(scale=1):
            name = gr.Dropdown([*list_datasets(), UPLOAD], value=DEFAULT, label="Dataset",
                               info="digits works offline; torchvision sets need their files or the internet")
            upload = gr.File(label="Your images: a .zip with one folder per class", file_types=[".zip"],
                             type="filepath", elem_id="data-upload")
            pool = gr.File(label="Images nobody labelled (optional): image files, or a .zip of them",
                           file_count="multiple", file_types=["image", ".zip"], type="filepath",
                           elem_id="data-unlabelled")
            spc = fields.component("samples_per_class", 0, label="Samples per class (0 = all)",
                                   info="Few-shot: keep only this many training images per class")
            val = fields.component("val_fraction", info=None)
            seed = fields.component("seed", info=None)
            load_btn = gr.Button("Load dataset", variant="primary")
        with gr.Column(scale=2):
            summary = gr.Markdown()
            hint = gr.Markdown(visible=False, elem_id="model-hint")
            use_model = gr.Button(visible=False, variant="primary", elem_id="use-suggested-model")
            gallery = gr.Gallery(label="Examples per class", columns=5, height=320, object_fit="contain",
                                 elem_id="data-examples")
            counts = gr.Plot(label="Class counts")
    inputs = [session_state, name, upload, spc, val, seed]
    outputs = [session_state, summary, gallery, counts, name, hint, use_model]
    load_btn.click(load, inputs, outputs, api_name="load_dataset")
    # An upload loads at once (it used to wait for "Load dataset" while the old data stayed on screen).
    upload.upload(lambda: gr.update(value=UPLOAD), outputs=name, api_visibility="private") \
        .then(load, inputs, outputs, api_visibility="private")
    pool.upload(add_pool, [session_state, pool], [session_state, summary], api_name="add_unlabelled")
    return DataTab(inputs, outputs, summary, use_model, hint)
