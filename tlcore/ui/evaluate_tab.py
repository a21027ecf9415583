"""Evaluate tab: test accuracy, confusion matrix (click a cell to see its images), ROC, per-class metrics."""
from __future__ import annotations

import dataclasses
import functools
import shutil
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import numpy as np
import pandas as pd

from ..api import (
    CARD_FILE, FORMATS, all_near_one, atomic_write, card_beside, confusion_figure, evaluate_run, export_run, load_labelled, roc_figure
)
from ..errors import TLCoreError
from . import evaluate_insight as insight
from .clicks import on_plotly_click
from .session import Session
from .payload import typed
from .text import error, escape, warn

GALLERY_MAX = 48
GALLERY_COLUMNS = 6
# Plotly's click on a heatmap cell (row, column) clicks that cell of the table below, so the chart
# and the table run the same handler.
HEATMAP_CLICKS = on_plotly_click("cm-chart", """
      if (!Array.isArray(p.pointIndex)) return;
      const [row, col] = p.pointIndex;  // aria indices: row 1 is the header, column 1 the class names
      const cell = document.querySelector(
        `#cm-table [role=row][aria-rowindex="${row + 2}"] [aria-colindex="${col + 2}"]`);
      if (!cell) return;
      cell.scrollIntoView({block: 'nearest'});
      // The table selects on the pointer's press, not on a bare click(): send what a mouse sends.
      for (const type of ['pointerdown', 'mousedown', 'pointerup', 'mouseup', 'click']) {
        const Kind = type.startsWith('pointer') ? PointerEvent : MouseEvent;
        cell.dispatchEvent(new Kind(type, {bubbles: true, cancelable: true, view: window, button: 0}));
      }""")


class EvaluateTab(NamedTuple):
    runs: gr.Dropdown  # the run shown
    outputs: list  # summary, confusion chart, table, ROC, per-class table, gallery, download, caption, model card
    more_epochs: gr.Number  # "continue training to" this many epochs in all
    continue_button: gr.Button  # wired by the app to the Train tab's streaming (train_tab.continue_training)


def _record(session: Session, name: str | None):
    """The run as shown: on its own test split, or on a labelled set uploaded for it."""
    if not name or name not in session.runs:
        return None
    return session.evaluated_on.get(name) or session.runs[name]


def caption(ev, i: int) -> str:
    """Short enough for a thumbnail, and read without a legend: "predicted ants (84%) · true bees",
    or "predicted 3 (97%)" where it was right."""
    pred, true = ev.classes[ev.preds[i]], ev.classes[ev.labels[i]]
    return f"predicted {pred} ({ev.probs[i, ev.preds[i]]:.0%})" + ("" if pred == true else f" · true {true}")


def _gallery(session: Session, rec, idx: np.ndarray) -> list:
    ev = rec.result.test
    idx = idx[:GALLERY_MAX]
    imgs = insight.gallery_pictures(session, rec, idx)  # under Grad-CAM when that is on
    return [(img, caption(ev, i)) for img, i in zip(imgs, idx)]


@typed
def toggle_gradcam(session: Session, name: str | None, on: bool):
    """The gallery's images again, with or without Grad-CAM over them; its label names the method."""
    session.gradcam = bool(on)
    rec = _record(session, name)
    if rec is None or rec.result.test is None:
        return gr.Gallery(label=insight.GRADCAM_LABEL if on else insight.PLAIN_LABEL)
    note = insight.map_note(session, rec) if on else None
    if note:
        session.gradcam = False
        warn(note)
        return gr.skip()
    return gr.Gallery(_gallery(session, rec, np.array(session.gallery, dtype=int)),
                      label=insight.GRADCAM_LABEL if on else insight.PLAIN_LABEL)


def _evaluated(session: Session, rec):
    """The run's test evaluation; a stopped run's kept epoch is evaluated now, the first time it is shown."""
    if rec.result.test is None and rec.result.history:
        d = rec.data
        rec.result.test = evaluate_run(session.runs.model(rec.name), d.test, rec.result.classes, **_judged(rec))
    return rec.result.test


def _judged(rec) -> dict:
    """How the tab judges a run: the engine's one rule (the precision it trained in), on the CPU
    where the app keeps its models (GPU work goes through ZeroGPU's calls, not here)."""
    return {"run": rec.result.config.to_dict(), "device": "cpu"}


NO_RUN = "Train a model on the Train tab; its evaluation on the test split appears here."
NO_CARD = "*The run's model card appears here once a run is shown.*"
PICK = "Click a cell of the confusion matrix (the chart or the table) to see its images."


@typed
def show(session: Session, name: str | None, normalized: str):
    """Everything for one run on its own test split (empty when there is none yet)."""
    session.evaluated_on.pop(name or "", None)
    rec = _record(session, name)
    if rec is None or _evaluated(session, rec) is None:
        return NO_RUN, None, None, None, None, [], None, PICK, NO_CARD
    return _shown(session, rec, normalized)


@typed
def show_other(session: Session, name: str | None, upload, normalized: str):
    """The run on an uploaded labelled set (all of it, or its held-out folder), in place of its test split."""
    rec = session.runs.get(name or "")
    if rec is None or not upload:
        raise error("Pick a run, then upload a .zip of labelled images (class folders).", "Not evaluated")
    try:
        model = session.runs.model(rec.name)
        data = load_labelled(str(upload), list(rec.result.classes), image_size=model.spec.size)
        ev = evaluate_run(model, data.test, rec.result.classes, **_judged(rec))
    except TLCoreError as e:
        raise error(e, "Not evaluated") from None
    session.evaluated_on[rec.name] = view = dataclasses.replace(
        rec, data=data, result=dataclasses.replace(rec.result, test=ev))
    return _shown(session, view, normalized, heading=f"On {escape(data.name)}: accuracy",
                  after=f"\n\n{data.split_note} Pick the run again to see its own test split.")


def _shown(session: Session, rec, normalized: str, heading: str = "Test accuracy", after: str = ""):
    ev = rec.result.test
    cm = ev.confusion
    table = pd.DataFrame(cm, columns=ev.classes)
    table.insert(0, "true \\ predicted", ev.classes)
    per_class = ev.per_class.round(4)
    per_class.insert(1, "ROC AUC", [round(ev.roc[c].auc, 4) if c in ev.roc else None for c in per_class["class"]])
    kept = f"kept epoch {rec.result.best_epoch}" + (
        f" of a run that {rec.result.status.value}" if rec.result.status not in ("completed", "early-stopped") else "")
    summary = (f"### {heading} **{ev.accuracy:.2%}** on {len(ev.labels):,} images\n"
               f"macro AUC {ev.macro.auc:.4f} (each class's ROC AUC, averaged) · micro AUC {ev.micro.auc:.4f} "
               f"(every image's score for every class, pooled) · {kept} · {rec.result.device}"
               + roc_said(ev) + source_task(rec.result) + after)
    # Start the gallery on the most confident mistakes: the most instructive images.
    wrong = ev.most_confident_wrong(GALLERY_MAX)
    archive = session.folder / "downloads" / f"{rec.name}.zip"
    if not archive.exists():  # once per run, not on every redraw; whole or not at all
        with atomic_write(archive) as tmp:
            shutil.make_archive(str(tmp.with_suffix("")), "zip", rec.folder)
    return (summary, _heatmap(ev, normalized), table, roc_figure(ev),
            per_class, _gallery(session, rec, wrong), str(archive), _gallery_caption(len(wrong)), _card(rec))


def _card(rec) -> str:
    """The run's model card as its folder has it (the one in its zip and beside its exports)."""
    card = Path(rec.folder) / CARD_FILE if rec.folder else None
    return card.read_text() if card is not None and card.is_file() else NO_CARD


def roc_said(ev) -> str:
    """When the ROC chart cannot show anything (every class within a hair of AUC 1), what it would
    have shown, in a line from this run's numbers."""
    if not all_near_one(ev):
        return ""
    aucs = [c.auc for c in ev.roc.values()]
    return (f"\n\n**ROC:** every class's AUC is between {min(aucs):.3f} and {max(aucs):.3f}: for each class, at "
            f"least {min(aucs):.1%} of the pairs (one of its test images, one of another class) are ranked the right "
            f"way by its score, so the {len(aucs)} curves lie on top of each other in the top-left corner. Each "
            f"class's AUC is in the per-class table, beside its name.")


def _gallery_caption(wrong: int) -> str:
    if wrong == 0:
        return f"No test image is misclassified. {PICK}"
    return f"The {'' if wrong == 1 else f'{wrong} '}most confident mistake{'' if wrong == 1 else 's'}. {PICK}"


@typed
def export(session: Session, name: str | None, fmt: str) -> list[str]:
    """The run exported as ``fmt`` with its model card, for download."""
    rec = _record(session, name)
    if rec is None or rec.result.checkpoint is None:
        raise error("Pick a saved run first.", "Not exported")
    try:
        out = export_run(rec.result.checkpoint, fmt, session.folder / "downloads" / f"{rec.name}{FORMATS[fmt][0]}")
    except TLCoreError as e:
        raise error(e, "Not exported") from None
    return [str(out), str(card_beside(out))]


@typed
def heatmap(session: Session, name: str | None, normalized: str):
    """Only the chart: switching counts / row shares leaves the images and their caption as they are."""
    rec = _record(session, name)
    if rec is None or rec.result.test is None:
        return None
    return _heatmap(rec.result.test, normalized)


def _heatmap(ev, normalized: str):
    return confusion_figure(ev.confusion, ev.classes, normalized == "row-normalized")


def source_task(r) -> str:
    """The source model's own task, before and after this fine-tuning, beside the target's accuracy."""
    before, after = r.source_accuracy_before, r.source_accuracy_after
    if before is None or after is None:
        return ""
    return (f"\n\n**Source task** ({Path(r.config.weights).name}, its replay sample, read by its own "
            f"head): **{before:.1%}** before fine-tuning → **{after:.1%}** after "
            f"({100 * (after - before):+.1f} points) · this task: **{r.test.accuracy:.1%}**\n\n*The source task is "
            f"what the starting model was trained for; fine-tuning it on this data can make it forget that.*")


@typed
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
    true, pred = escape(ev.classes[row]), escape(ev.classes[col])
    return _gallery(session, rec, idx), (f"{len(idx)} {what}: true **{true}**, predicted **{pred}**"
                                + (f" (showing {GALLERY_MAX})" if len(idx) > GALLERY_MAX else ""))


def build(session_state: gr.State, runs: gr.Dropdown) -> EvaluateTab:
    with gr.Row():
        runs.render()
        normalized = gr.Radio(["counts", "row-normalized"], value="counts", label="Confusion matrix shows")
        download = gr.File(label="Download the run (weights, config, metrics)", interactive=False)
    summary = gr.Markdown()
    with gr.Row():
        heat = gr.Plot(label="Confusion matrix: click a cell to see its images", elem_id="cm-chart")
        roc = gr.Plot(label="ROC")
    # Right under the charts: each class's AUC is where the ROC chart cannot separate them.
    per_class = gr.Dataframe(label="Per-class metrics (ROC AUC: one class against the rest)", interactive=False,
                             elem_id="per-class")
    table = gr.Dataframe(label="Confusion matrix: click a count to see those images", interactive=False,
                         elem_id="cm-table")
    caption = gr.Markdown()
    cam = gr.Checkbox(False, label="Show Grad-CAM over the images (where the last convolutional layer looked)",
                      elem_id="gradcam-toggle")
    # fit_columns off: Gradio would spread a few images over the whole row (two mistakes became two
    # huge, cropped tiles without captions); six columns keep a thumbnail one size whatever the count.
    gallery = gr.Gallery(label=insight.PLAIN_LABEL, columns=GALLERY_COLUMNS, fit_columns=False, height="auto",
                         object_fit="contain", elem_id="eval-gallery")
    views = insight.build()
    with gr.Accordion("Model card: what it was trained on, how, how well, what it forgot, what it is not for",
                      open=False):
        card = gr.Markdown(NO_CARD, elem_id="model-card")
    with gr.Row(equal_height=True):
        with gr.Column():
            gr.Markdown("**Take it home**: the model with its classes, input size and normalization inside, "
                        "and its model card.")
            with gr.Row():
                buttons = {fmt: gr.Button(f"Export {label}", size="sm", elem_id=f"export-{fmt}")
                           for fmt, label in (("onnx", "ONNX"), ("torchscript", "TorchScript"))}
            exported = gr.File(label="Export and model card", file_count="multiple", interactive=False,
                               elem_id="export-files")
        with gr.Column():
            gr.Markdown("**Continue training** this run from its last epoch (weights, optimizer, schedule and data "
                        "order as they were), as a new run.")
            more = gr.Number(10, label="Epochs in all", step=1, elem_id="continue-epochs")
            go_on = gr.Button("Continue training →", elem_id="continue-run")
    for fmt, button in buttons.items():
        button.click(functools.partial(export, fmt=fmt), [session_state, runs], exported,
                     api_name=f"export_{fmt}")
    other = gr.File(label="Evaluate it on other labelled images: a .zip of class folders (only test/, or no "
                            "split folders: every image counts)", file_types=[".zip"], type="filepath",
                    elem_id="evaluate-other")
    outs = [summary, heat, table, roc, per_class, gallery, download, caption, card]
    runs.change(show, [session_state, runs, normalized], outs, api_name="evaluate")
    other.upload(show_other, [session_state, runs, other, normalized], outs, api_name="evaluate_on")
    normalized.change(heatmap, [session_state, runs, normalized], heat, api_visibility="private")
    table.select(pick_cell, [session_state, runs], [gallery, caption], api_visibility="private")
    # The chart is the control too: its click presses the table's cell, the keyboard's way in.
    heat.change(None, js=HEATMAP_CLICKS, api_visibility="private")
    cam.change(toggle_gradcam, [session_state, runs, cam], gallery, api_visibility="private")
    insight.wire(views, session_state, runs)
    return EvaluateTab(runs, outs, more, go_on)
