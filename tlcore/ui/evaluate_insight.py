"""The Evaluate tab's look inside: the feature space before and after, and Grad-CAM.

The feature space shows why a pretrained body helps: its features of the test images already
separate the classes (5-NN accuracy, and a 2-D picture) before any training on them. Grad-CAM
shows where the last convolutional layer looked, over the gallery's images or an uploaded one
(the Draw tab keeps SmoothGrad, which suits a drawing's thin strokes).
"""
from __future__ import annotations

from typing import NamedTuple

import gradio as gr
import numpy as np
import torch

from ..errors import TLCoreError
from ..api import (
    FOLDS, MIN_MAP_SIDE, NEIGHBOURS, NOT_CONV, PROJECTION_NAMES, TOO_SMALL, enlarged, feature_space, feature_space_figure, FeatureSpace,
    gradcam, heat_overlay, is_convolutional, load_image_files, panels, predict_probs, to_display
)
from .clicks import on_plotly_click
from .payload import typed
from .session import Session
from .text import error, escape

GRADCAM_LABEL = "Images · Grad-CAM: where the last convolutional layer looked for the predicted class (red = most)"
GALLERY_SIDE = 96  # the gallery's images are enlarged to at least this side
PLAIN_LABEL = "Images"
GRADCAM_BATCH = 16  # images per Grad-CAM pass: a big body's gradients for 48 images at once would not fit small machines
NO_POINT = "Click a point of the chart (or type a test image number) to see that image."
# Plotly's click on a point writes its test image number into the number box, whose change shows it.
POINT_CLICKS = on_plotly_click("fs-chart", """
      const box = document.querySelector('#fs-point input');
      if (!p.customdata || !box) return;
      box.value = String(p.customdata[0]);
      box.dispatchEvent(new Event('input', {bubbles: true}));
      box.dispatchEvent(new Event('change', {bubbles: true}));""")


class InsightViews(NamedTuple):
    projection: gr.Radio
    show: gr.Button
    summary: gr.Markdown
    chart: gr.Plot
    point: gr.Number
    point_image: gr.Image
    point_caption: gr.Markdown
    upload: gr.Image
    explained: gr.Image
    explained_caption: gr.Markdown


def gallery_pictures(session: Session, rec, idx: np.ndarray) -> list[np.ndarray]:
    """The gallery's pictures of test images ``idx``: as they are, or under Grad-CAM when it is on."""
    session.gallery = [int(i) for i in idx]
    images = rec.data.test.images[torch.as_tensor(idx, dtype=torch.long)]
    if session.gradcam and len(idx):
        model = session.runs.model(rec.name)
        if is_convolutional(model):
            return [a for a in _overlaid(model, images, GALLERY_SIDE).permute(0, 2, 3, 1).numpy()]
    return to_display(images, min_side=GALLERY_SIDE)


def _overlaid(model, images: torch.Tensor, side: int, targets: torch.Tensor | None = None) -> torch.Tensor:
    """The images enlarged for display under their Grad-CAM maps, drawn at that size (in batches)."""
    out = []
    for i in range(0, len(images), GRADCAM_BATCH):
        batch = images[i:i + GRADCAM_BATCH]
        shown = enlarged(batch, side)
        t = None if targets is None else targets[i:i + GRADCAM_BATCH]
        out.append(heat_overlay(shown, gradcam(model, batch, t, size=tuple(shown.shape[-2:]))))
    return torch.cat(out)


def map_note(session: Session, rec) -> str | None:
    """Why Grad-CAM cannot be shown for this run's images, or None when it can."""
    model = session.runs.model(rec.name)
    if not is_convolutional(model):
        return NOT_CONV.format(backbone=model.backbone)
    side = min(rec.data.test.images.shape[-2:])
    return TOO_SMALL.format(side=side) if side < MIN_MAP_SIDE else None


# -- the feature space ---------------------------------------------------------------------------
def _space(session: Session, rec) -> FeatureSpace:
    """The run's feature space, computed once per run shown (a projection switch reuses it)."""
    if session.feature_space is None or session.feature_space[0] != rec.name:
        model = session.runs.model(rec.name)
        space = feature_space(model, rec.result.config.weights, rec.data.test.images, rec.data.test.labels)
        session.feature_space = (rec.name, space)
    return session.feature_space[1]


def space_summary(space: FeatureSpace, n: int) -> str:
    """One line with the number: 5-NN accuracy before → after, and how to read the chart."""
    after = space.after.knn_accuracy
    if space.before is None:
        head = f"**{NEIGHBOURS}-NN accuracy** of this run's features: **{after:.1%}**. {escape(space.note)}"
    else:
        before = space.before.knn_accuracy
        head = (f"**{NEIGHBOURS}-NN accuracy** on the features: {escape(space.before.title)} **{before:.1%}** → "
                f"after training **{after:.1%}** ({100 * (after - before):+.1f} points)")
        if np.array_equal(space.before.features, space.after.features):
            head += ". The body was frozen, so its features are the source's: both panels are the same"
    return (f"{head}\n\nHow often a test image's {NEIGHBOURS} nearest neighbours in the body's feature space share "
            f"its class ({FOLDS}-fold cross-validation over the {n:,} test images: they are split into "
            f"{FOLDS} parts, and each part's images look for neighbours among the other {FOLDS - 1}): the "
            "higher, the better the body alone separates the classes, before any head. Hover a point for its class; "
            "click it to see it.")


@typed
def show_space(session: Session, name: str | None, method: str):
    """The summary and the chart (PCA or t-SNE) of the run's test features, before and after."""
    rec = session.runs.get(name or "")
    if rec is None:
        raise error("Pick a run first: its test images' features are shown.", "No feature space")
    key = {v: k for k, v in PROJECTION_NAMES.items()}.get(method, method)
    try:
        space = _space(session, rec)
    except TLCoreError as e:
        raise error(e, "No feature space") from None
    preds = rec.result.test.preds if rec.result.test is not None else None
    labels = rec.data.test.labels.numpy()
    fig = feature_space_figure(panels(space, key), labels, list(rec.data.classes), key, preds=preds)
    return space_summary(space, len(labels)), fig


@typed
def show_point(session: Session, name: str | None, index):
    """The test image behind a clicked point, and what it is."""
    rec = session.runs.get(name or "")
    if rec is None or index is None:
        return None, NO_POINT
    try:
        i = int(index)
    except (TypeError, ValueError, OverflowError):  # the API may send anything
        return None, f"A test image's number is a whole number, got {escape(repr(index)[:40])}."
    if not 0 <= i < len(rec.data.test):
        return None, f"There are {len(rec.data.test):,} test images: pick a number from 0 to {len(rec.data.test) - 1}."
    true = rec.data.classes[int(rec.data.test.labels[i])]
    said = ""
    if rec.result.test is not None:
        ev = rec.result.test
        said = f", predicted **{escape(ev.classes[ev.preds[i]])}** ({ev.probs[i, ev.preds[i]]:.0%})"
    return to_display(rec.data.test.images[i:i + 1], min_side=192)[0], f"Test image #{i}: class **{escape(true)}**{said}"


# -- Grad-CAM of an uploaded image ---------------------------------------------------------------
@typed
def explain_upload(session: Session, name: str | None, path: str | None):
    """An uploaded image: the run's guess and, for a convolutional body, its Grad-CAM for that class."""
    rec = session.runs.get(name or "")
    if rec is None or not path:
        raise error("Pick a run, then upload an image to see where it looked.", "Not explained")
    model = session.runs.model(rec.name)
    try:
        x = load_image_files([path], model.spec)
    except TLCoreError as e:
        raise error(e, "Not explained") from None
    probs = predict_probs(model, x)[0]
    k = int(probs.argmax())
    cls = escape(rec.result.classes[k])
    guess = f"**{cls}** {float(probs[k]):.0%}"
    if not is_convolutional(model):
        return to_display(x, min_side=256)[0], f"{guess}. {escape(NOT_CONV.format(backbone=model.backbone))}"
    shown = _overlaid(model, x, 256, torch.tensor([k]))
    return (shown[0].permute(1, 2, 0).numpy(),
            f"{guess} · Grad-CAM: where the last convolutional layer looked for **{cls}** (red = most, blue = none)")


def build() -> InsightViews:
    """The components (the Evaluate tab wires them: it knows the run list and the gallery)."""
    with gr.Accordion("Feature space: does the body already separate the classes?", open=True):
        with gr.Row():
            projection = gr.Radio(list(PROJECTION_NAMES.values()), value="PCA", label="Projection to 2-D",
                                  elem_id="fs-projection")
            show = gr.Button("Show the feature space, before and after", elem_id="fs-show")
        summary = gr.Markdown(elem_id="fs-summary")
        chart = gr.Plot(label="Penultimate-layer features of the test images", elem_id="fs-chart")
        with gr.Row():
            point = gr.Number(None, label="Test image # (click a point, or type)", precision=0, elem_id="fs-point")
            point_image = gr.Image(label="That image", interactive=False, height=220, elem_id="fs-image")
            point_caption = gr.Markdown(NO_POINT, elem_id="fs-point-caption")
    with gr.Accordion("Where it looked: Grad-CAM of any image", open=False):
        with gr.Row():
            upload = gr.Image(label="Upload an image", type="filepath", sources=["upload"], height=260,
                              elem_id="gradcam-upload")
            explained = gr.Image(label="Grad-CAM", interactive=False, height=260, elem_id="gradcam-out")
        explained_caption = gr.Markdown(elem_id="gradcam-caption")
    return InsightViews(projection, show, summary, chart, point, point_image, point_caption, upload, explained,
                        explained_caption)


SHOW_HINT = "Press **Show the feature space** to compare this run's features with those of the body it started from."


def cleared():
    """Another run is picked: its feature space is not computed until asked for (a big body takes a while)."""
    return SHOW_HINT, None, None, None, NO_POINT


def wire(views: InsightViews, session_state: gr.State, runs: gr.Dropdown) -> None:
    """The feature space's and the upload's events (the gallery's toggle is the Evaluate tab's)."""
    private = dict(api_visibility="private")
    space_out = [views.summary, views.chart]
    views.show.click(show_space, [session_state, runs, views.projection], space_out, api_name="feature_space")
    views.projection.change(show_space, [session_state, runs, views.projection], space_out, **private)
    views.chart.change(None, js=POINT_CLICKS, **private)
    views.point.change(show_point, [session_state, runs, views.point], [views.point_image, views.point_caption],
                       **private)
    runs.change(cleared, None, [views.summary, views.chart, views.point, views.point_image, views.point_caption],
                **private)
    views.upload.upload(explain_upload, [session_state, runs, views.upload],
                        [views.explained, views.explained_caption], api_name="gradcam")
