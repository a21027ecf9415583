"""Data tab: pick a registered dataset or upload a zip; see examples, counts and a summary."""
from __future__ import annotations

import gradio as gr

from ..data import list_datasets, load_dataset
from ..errors import TLCoreError
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
    """Load the chosen dataset; on any problem warn and keep the previous one."""
    target = upload if name == UPLOAD else name
    if name == UPLOAD and not upload:
        gr.Warning("Choose a .zip of class folders to upload first.")
        return session, *_view(session)
    spc = int(samples_per_class) if samples_per_class else None
    try:
        data = load_dataset(str(target), samples_per_class=spc, val_fraction=float(val_fraction), seed=int(seed))
    except TLCoreError as e:
        gr.Warning(str(e))
        return session, *_view(session)
    session.dataset = data
    session.dataset_label = name
    return session, *_view(session)


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
            spc = gr.Number(value=0, precision=0, minimum=0, label="Samples per class (0 = all)",
                            info="Few-shot: keep only this many training images per class")
            val = gr.Slider(0.05, 0.5, value=0.1, step=0.05, label="Validation fraction")
            seed = gr.Number(value=0, precision=0, label="Seed")
            load_btn = gr.Button("Load dataset", variant="primary")
        with gr.Column(scale=2):
            summary = gr.Markdown()
            gallery = gr.Gallery(label="Examples per class", columns=8, height=320, object_fit="contain")
            counts = gr.Plot(label="Class counts")
    upload.upload(lambda: gr.update(value=UPLOAD), outputs=name, api_visibility="private")
    outs = [session_state, summary, gallery, counts]
    load_btn.click(load, [session_state, name, upload, spc, val, seed], outs, api_name="load_dataset")
    return load, [session_state, name, upload, spc, val, seed], outs
