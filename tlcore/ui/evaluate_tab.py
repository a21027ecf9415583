"""Evaluate tab: test accuracy, confusion matrix (click a cell to see its images), ROC, per-class metrics."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import numpy as np
import pandas as pd

from ..plots import confusion_figure, roc_figure, to_display
from .session import Session

GALLERY_MAX = 48


class EvaluateTab(NamedTuple):
    runs: gr.Dropdown  # the run shown
    outputs: list  # summary, confusion chart, table, ROC, per-class table, gallery, download, caption


def _record(session: Session, name: str | None):
    if not name or name not in session.runs:
        return None
    return session.runs[name]


def _gallery(rec, idx: np.ndarray) -> list:
    ev = rec.result.test
    idx = idx[:GALLERY_MAX]
    imgs = to_display(rec.data.test.images[idx])
    return [(img, f"true {ev.classes[ev.labels[i]]} · predicted {ev.classes[ev.preds[i]]} "
                  f"({ev.probs[i, ev.preds[i]]:.0%})") for img, i in zip(imgs, idx)]


def show(session: Session, name: str | None, normalized: str):
    """Everything for one run (empty when there is none yet)."""
    rec = _record(session, name)
    if rec is None or rec.result.test is None:
        msg = "Train a model on the Train tab; its evaluation on the test split appears here."
        return msg, None, None, None, None, [], None, "Click a cell of the table to see its images."
    ev = rec.result.test
    cm = ev.confusion
    table = pd.DataFrame(cm, columns=ev.classes)
    table.insert(0, "true \\ predicted", ev.classes)
    per_class = ev.per_class.round(4)
    summary = (f"### Test accuracy **{ev.accuracy:.2%}** on {len(ev.labels):,} images\n"
               f"macro AUC {ev.macro.auc:.4f} · micro AUC {ev.micro.auc:.4f} · best epoch "
               f"{rec.result.best_epoch} · {rec.result.device}" + source_task(rec.result))
    # Start the gallery on the most confident mistakes: the most instructive images.
    wrong = ev.most_confident_wrong(GALLERY_MAX)
    archive = session.folder / "downloads" / f"{rec.name}.zip"
    if not archive.exists():  # once per run, not on every redraw
        shutil.make_archive(str(archive.with_suffix("")), "zip", rec.folder)
    return (summary, confusion_figure(cm, ev.classes, normalized == "row-normalized"), table, roc_figure(ev),
            per_class, _gallery(rec, wrong), str(archive),
            f"The {len(wrong)} most confident mistakes. Click a cell of the table to see its images.")


def source_task(r) -> str:
    """The source model's own task, before and after this fine-tuning, beside the target's accuracy."""
    before, after = r.source_accuracy_before, r.source_accuracy_after
    if before is None or after is None:
        return ""
    return (f"\n\n**Source task** ({Path(r.config.weights).name}, its replay sample, read by its own "
            f"head): **{before:.1%}** before fine-tuning → **{after:.1%}** after "
            f"({100 * (after - before):+.1f} points) · this task: **{r.test.accuracy:.1%}**")


def pick_cell(session: Session, name: str | None, evt: gr.SelectData):
    rec = _record(session, name)
    if rec is None or rec.result.test is None or evt.index is None:
        return [], "No run selected."
    row, col = evt.index[0], evt.index[1] - 1  # column 0 holds the class names
    ev = rec.result.test
    if not (0 <= row < len(ev.classes) and 0 <= col < len(ev.classes)):
        return gr.skip(), "Click a count in the table."
    idx = ev.cell(row, col)
    what = "correct" if row == col else "mistaken"
    return _gallery(rec, idx), (f"{len(idx)} {what}: true **{ev.classes[row]}**, predicted **{ev.classes[col]}**"
                                + (f" (showing {GALLERY_MAX})" if len(idx) > GALLERY_MAX else ""))


def build(session_state: gr.State, runs: gr.Dropdown) -> EvaluateTab:
    with gr.Row():
        runs.render()
        normalized = gr.Radio(["counts", "row-normalized"], value="counts", label="Confusion matrix shows")
        download = gr.File(label="Download the run (weights, config, metrics)", interactive=False)
    summary = gr.Markdown()
    with gr.Row():
        heat = gr.Plot(label="Confusion matrix")
        roc = gr.Plot(label="ROC")
    table = gr.Dataframe(label="Confusion matrix: click a count to see those images", interactive=False)
    caption = gr.Markdown()
    gallery = gr.Gallery(label="Images", columns=8, height=340, object_fit="contain")
    per_class = gr.Dataframe(label="Per-class metrics", interactive=False)
    outs = [summary, heat, table, roc, per_class, gallery, download, caption]
    runs.change(show, [session_state, runs, normalized], outs, api_name="evaluate")
    normalized.change(show, [session_state, runs, normalized], outs, api_visibility="private")
    table.select(pick_cell, [session_state, runs], [gallery, caption], api_visibility="private")
    return EvaluateTab(runs, outs)
