"""What a new teacher tripped over (issue #26), each through the function or component the page
shows it with. (Layout that only a browser shows: tests/test_e2e_frictions.py.)"""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from conftest import digit_canvas, write_folder, zip_folder
from tlcore.config import RunConfig
from tlcore.data.sources import fetch_failure
from tlcore.events import EpochEvent
from tlcore.insight.evaluate import evaluate_probs
from tlcore.insight.plots import ROC_HAIR, roc_figure, training_figures
from tlcore.studies.teach import Drawings
from tlcore.training.result import RunResult, Status
from tlcore.ui import data_tab, evaluate_tab
from tlcore.ui.session import Session
from tlcore.ui.train_tab import config, ending


def _epochs(accuracies: list[tuple[float, float]]) -> list[EpochEvent]:
    return [EpochEvent(i + 1, len(accuracies), 0.5, tr, 0.4, va, 0.1, 100.0, i + 1.0, 0.0, True)
            for i, (tr, va) in enumerate(accuracies)]


@pytest.mark.parametrize("status,message,said", [
    (Status.COMPLETED, "Completed 30 epochs; kept epoch 28 (best validation loss).",
     "**Completed 30 epochs**; kept epoch 28 (best validation loss)."),
    (Status.STOPPED, "Stopped at epoch 3, step 5.", "**Stopped at epoch 3, step 5.**"),
    (Status.FAILED, "The loss exploded at epoch 1; lower the learning rate.",
     "**Failed.** The loss exploded at epoch 1; lower the learning rate."),
])
def test_how_a_run_ended_is_said_once(status, message, said):
    """Item 8: "Completed. Completed 30 epochs"."""
    r = RunResult(None, RunConfig(), ["0", "1"], status, message)
    assert ending(r) == said


def test_one_drawing_is_a_drawing():
    """Item 8: "1 drawings"."""
    d = Drawings()
    d.add(digit_canvas("7"), "7", [str(i) for i in range(10)])
    assert d.summary().startswith("**1 drawing** (")
    d.add(digit_canvas("1"), "1", [str(i) for i in range(10)])
    assert d.summary().startswith("**2 drawings** (")


def test_the_accuracy_axis_fits_the_run_and_says_where_chance_is():
    """Item 7: on a 0-1 axis a run between 95% and 99% is a flat line at the top."""
    _, acc = training_figures([(0.1, 2.3, 0.04)], _epochs([(0.95, 0.96), (0.98, 0.99)]), chance=0.1)
    lo, hi = acc.layout.yaxis.range
    assert 0.85 <= lo <= 0.9 and 0.99 < hi <= 1.02
    assert [a.text for a in acc.layout.annotations] == ["chance 10% (below the axis)"]
    # Near chance, chance is a line on the chart.
    _, acc = training_figures([], _epochs([(0.3, 0.25), (0.45, 0.5)]), chance=0.1)
    assert acc.layout.yaxis.range[0] <= 0.1 and [s.y0 for s in acc.layout.shapes] == [0.1]
    # Before any epoch ends there is nothing to fit.
    _, acc = training_figures([(0.1, 2.3, 0.04)], [], chance=0.5)
    assert list(acc.layout.yaxis.range) == [0.0, 1.02]


def test_roc_when_every_class_is_within_a_hair_of_one():
    """Item 6: ten curves on top of each other and a legend over them taught nothing."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    probs = rng.random((200, 10)) * 0.1
    probs[np.arange(200), labels] = 1.0
    ev = evaluate_probs(labels, probs / probs.sum(1, keepdims=True), [str(i) for i in range(10)])
    said = evaluate_tab.roc_said(ev)
    assert "every class's AUC is between 1.000 and 1.000" in said and "10 curves lie on top of each other" in said
    fig = roc_figure(ev)
    assert f"AUC ≥ {ROC_HAIR}" in fig.layout.title.text
    assert [t.name for t in fig.data if t.showlegend is not False] == ["micro (AUC 1.000)", "macro (AUC 1.000)"]
    # A class the model confuses keeps the chart and its legend as they were.
    probs[:20, 0], probs[:20, 1] = 0.0, 1.0
    ev = evaluate_probs(labels, probs, [str(i) for i in range(10)])
    assert evaluate_tab.roc_said(ev) == "" and all(t.showlegend is not False for t in roc_figure(ev).data[:10])


def test_the_mistakes_keep_six_columns_whatever_their_count():
    """Item 5: Gradio fitted its columns to the count: two mistakes became two huge, cropped tiles."""
    import gradio as gr

    with gr.Blocks():
        built = evaluate_tab.build(gr.State(Session()), gr.Dropdown([], render=False))
    gallery = next(c for c in built.outputs if getattr(c, "elem_id", None) == "eval-gallery")
    assert gallery.columns == evaluate_tab.GALLERY_COLUMNS == 6 and gallery.fit_columns is False


def test_a_failed_download_is_one_short_reason():
    """Item 4: torchvision's error lists every mirror and its urllib error: a screenful."""
    e = RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://ossci-datasets.s3.amazonaws.com/"
                     "mnist/, got:\n<urlopen error [Errno -2] Name or service not known>\nTried http://yann.lecun"
                     ".com/exdb/mnist/, got:\n<urlopen error [Errno -2] Name or service not known>\n")
    assert fetch_failure(e) == "no connection: Name or service not known"
    assert fetch_failure(OSError("disk full")) == "disk full"


def test_the_menu_shows_the_data_that_stayed_and_runs_are_named_after_the_file(tmp_path):
    """Items 4 and 8: a refused choice left the menu on it while the old data stayed; runs of an
    upload were named "upload a zip…"."""
    s = Session()
    menu = data_tab.load(s, "digits", None, 0, 0.1, 0)[4]
    assert menu["value"] == "digits"
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    out = data_tab.load(s, data_tab.UPLOAD, str(broken), 0, 0.1, 0)
    assert "Not loaded" in out[1] and out[4]["value"] == "digits" and s.dataset.name == "digits"
    bees = zip_folder(write_folder(tmp_path / "bees", {"ants": 6, "bees": 6}, size=16), tmp_path / "ants-bees.zip")
    menu = data_tab.load(s, data_tab.UPLOAD, str(bees), 0, 0.1, 0)[4]
    assert menu["value"] == data_tab.UPLOAD and s.dataset_label == "ants-bees.zip"
    assert zipfile.is_zipfile(bees) and config(s, {}).dataset == "ants-bees.zip"


def test_the_readme_names_every_tab_and_the_cpu_only_install():
    """Item 10: the README's intro left out Compare (and the Lesson); the default install is 6 GB of CUDA."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    tree = ast.parse((root / "tlcore" / "ui" / "__init__.py").read_text())
    tabs = [c.args[0].value for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "attr", "") == "Tab"]
    readme = (root / "README.md").read_text()
    intro = next(line for line in readme.splitlines() if line.startswith("- **The app**"))
    assert tabs and all(t in intro for t in tabs), (tabs, intro)
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme


def test_photos_get_a_pretrained_photo_model_suggested_and_one_click_chooses_it(tmp_path):
    """Item 1: after a photo upload the Model tab stayed on LeNet-5 / MNIST with no hint."""
    from tlcore.ui import model_tab

    s = Session()
    data_tab.load(s, "digits", None, 0, 0.1, 0)
    *_, hint, button = data_tab.load(s, "digits", None, 0, 0.1, 0)
    assert hint["visible"] is False and button["visible"] is False  # digits: the default fits them
    photos = zip_folder(write_folder(tmp_path / "p", {"ants": 6, "bees": 6}, size=96), tmp_path / "ants-bees.zip")
    *_, hint, button = data_tab.load(s, data_tab.UPLOAD, str(photos), 0, 0.1, 0)
    assert hint["visible"] and "colour photos (96×96 px, 2 classes" in hint["value"] and "2,562 weights" in hint["value"]
    assert "LeNet-5" in hint["value"] and "linear probe" in button["value"]
    assert model_tab.use_suggested(s)["value"] == "efficientnet_lite0"
    # The menu's change (as for a user's choice) takes the suggested weights, even where the weights
    # chosen before ("none") are valid for the new backbone too, and applies the linear probe.
    weights, preset, _ = model_tab.on_backbone(s, "efficientnet_lite0", "none", "full")
    assert (weights["value"], preset["value"]) == ("imagenet", "linear-probe") and s.next_weights is None
    # Chosen (the Model tab's describe records it): no hint any more.
    model_tab.describe(s, "efficientnet_lite0", "imagenet", [], False)
    assert data_tab.model_hint(s)[0]["visible"] is False
    # Small colour images (CIFAR's 32 px) are not photos for this rule.
    small = zip_folder(write_folder(tmp_path / "s", {"a": 6, "b": 6}, size=32), tmp_path / "small.zip")
    *_, hint, _ = data_tab.load(s, data_tab.UPLOAD, str(small), 0, 0.1, 0)
    assert hint["visible"] is False


def test_the_presets_line_follows_the_choice():
    """Item 8: the freezing hint still read "linear probe: only the new head trains" after choosing full."""
    from tlcore.ui import model_tab

    s = Session()
    frozen, preset = model_tab.on_preset(s, "lenet5", "none", "full")
    assert frozen == [] and preset["info"].startswith("full: every layer trains")
    _, preset, _ = model_tab.on_backbone(s, "resnet18", "none", "finetune-top-2")
    assert preset["value"] == "full" and preset["info"].startswith("full:")  # random weights: every layer trains
    assert model_tab.preset_info("finetune-top-1") == \
        "the top 1 layer group of the body train with the new head; the rest stay frozen"


def test_the_model_card_has_the_forgetting_figures_and_shows_on_evaluate(tmp_path):
    """Item 9: the card left out the source task before/after and the regularizer, and was only a download."""
    from conftest import BUNDLED
    from tlcore.data import load_dataset
    from tlcore.training.train import train
    from tlcore.ui.session import RunRecord

    data = load_dataset("digits")
    s, name = Session(), "1-digits-lenet5"
    cfg = RunConfig(dataset="digits", weights=str(BUNDLED), preset="full", epochs=2, lwf_weight=1.0)
    r = train(cfg, data=data, out=tmp_path / name)
    s.add_run(RunRecord(name, r, data, tmp_path / name))
    shown = evaluate_tab.show(s, name, "counts")
    card = shown[-1]
    assert "(each class's ROC AUC, averaged)" in shown[0] and "(every image's score for every class, pooled)" in shown[0]
    assert card.startswith(f"# Model card: {name}") and "## The source task (forgetting)" in card
    before, after = f"{r.source_accuracy_before:.2%}", f"{r.source_accuracy_after:.2%}"
    assert f"{before} before fine-tuning, {after} after" in card and "Kept by: LwF 1.0." in card
    # A run from scratch has no source task: the card does not invent one.
    scratch = train(RunConfig(dataset="digits", epochs=1), data=data, out=tmp_path / "2-scratch")
    s.add_run(RunRecord("2-scratch", scratch, data, tmp_path / "2-scratch"))
    assert "source task" not in evaluate_tab.show(s, "2-scratch", "counts")[-1]


def test_technical_terms_come_with_a_plain_line():
    """Item 8: "label smoothing", "5-fold cross-validation", "1/2 ||w - w0||^2" and "source task" were
    shown without a plain line beside them."""
    import gradio as gr

    from tlcore.ui import evaluate_insight, fields, model_tab

    assert "the right class counts as 90% sure" in fields.component("label_smoothing").info
    assert "half the squared distance from the starting weights" in fields.component("l2sp").info
    from types import SimpleNamespace

    space = SimpleNamespace(after=SimpleNamespace(knn_accuracy=0.9), before=None, note="")
    assert "they are split into 5 parts, and each part's images look for neighbours among the other 4" in \
        evaluate_insight.space_summary(space, 359)
    with gr.Blocks():
        model = model_tab.build(gr.State(Session()))
    assert "averages learnt on the source data" in model.describe_inputs[-1].info  # the BatchNorm box
    r = RunResult(None, RunConfig(weights="/runs/lenet5-mnist"), ["0", "1"], Status.COMPLETED, "done",
                  source_accuracy_before=0.99, source_accuracy_after=0.5)
    r.test = type("T", (), {"accuracy": 0.9})()
    assert "The source task is what the starting model was trained for" in evaluate_tab.source_task(r)
