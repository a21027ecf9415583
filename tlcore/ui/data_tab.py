"""Data tab: pick a registered dataset or upload a zip; see examples, counts and a summary."""
from __future__ import annotations

import gradio as gr

from ..data import list_datasets, load_dataset
from ..errors import TLCoreError, verify_choice
from ..plots import class_count_figure, examples
from .session import Session

UPLOAD = "upload a zip…"


def summary_markdown(session: Session) -> str:
    d = session.dataset
    if d is None:
        return "No dataset loaded."
    sp = d.describe()["splits"]
    lines = [
        f"### {d.name}",
        f"**{len(d.classes)} classes** · {d.channels} channel{'s' if d.channels > 1 else ''} · "
        f"{d.size}×{d.size} px",
        f"train **{sp['train']:,}** · validation **{sp['val']:,}** · test **{sp['test']:,}**",
    ]
    if d.skipped:
        lines.append("Skipped: " + ", ".join(f"{n} {why}" for why, n in d.skipped.items()))
    return "\n\n".join(lines)


def load(session: Session, name: str, upload, samples_per_class, val_fraction, seed):
    """Load the chosen dataset; on any problem say why (a warning and in the summary) and keep the previous one.

    ``name`` must be a registered dataset or the upload choice: a path typed into the API is
    refused, so no caller can make the server read folders it was not given.
    """
    def refuse(why: str):
        gr.Warning(why)
        return session, f"**Not loaded:** {why}\n\n" + summary_markdown(session), *_view(session)[1:]

    try:
        verify_choice(name, "dataset", [*list_datasets(), UPLOAD])
        if name == UPLOAD and not upload:
            raise TLCoreError("Choose a .zip of class folders to upload first.")
        spc = _whole(samples_per_class, "samples per class", 0) or None
        data = load_dataset(str(upload if name == UPLOAD else name), samples_per_class=spc,
                            val_fraction=_number(val_fraction, "validation fraction"), seed=_whole(seed, "seed", 0))
    except TLCoreError as e:
        return refuse(str(e))
    session.dataset = data
    session.dataset_label = name
    return session, *_view(session)


def _number(v, what: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TLCoreError(f"The {what} must be a number, got {v!r}.") from None


def _whole(v, what: str, lo: int) -> int:
    if v is None or v == "":
        return lo
    x = _number(v, what)
    if x != int(x) or x < lo:
        raise TLCoreError(f"The {what} must be a whole number >= {lo}, got {v!r}.")
    return int(x)


def _view(session: Session):
    d = session.dataset
    if d is None:
        return summary_markdown(session), [], None
    return summary_markdown(session), examples(d), class_count_figure(d)


def build(session_state: gr.State):
    with gr.Row():
        with gr.Column(scale=1):
            name = gr.Dropdown([*list_datasets(), UPLOAD], value="digits", label="Dataset",
                               info="digits works offline; torchvision sets need their files or the internet")
            upload = gr.File(label="Your images: a .zip with one folder per class", file_types=[".zip"],
                             type="filepath")
            spc = gr.Number(value=0, step=1, label="Samples per class (0 = all)",
                            info="Few-shot: keep only this many training images per class")
            val = gr.Slider(0.05, 0.5, value=0.1, step=0.05, label="Validation fraction")
            seed = gr.Number(value=0, step=1, label="Seed")
            load_btn = gr.Button("Load dataset", variant="primary")
        with gr.Column(scale=2):
            summary = gr.Markdown()
            gallery = gr.Gallery(label="Examples per class", columns=8, height=320, object_fit="contain")
            counts = gr.Plot(label="Class counts")
    upload.upload(lambda: gr.update(value=UPLOAD), outputs=name, api_visibility="private")
    outs = [session_state, summary, gallery, counts]
    load_btn.click(load, [session_state, name, upload, spc, val, seed], outs, api_name="load_dataset")
    return load, [session_state, name, upload, spc, val, seed], outs
