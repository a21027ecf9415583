"""#14's frictions that are a function's matter, through the tabs' functions (no browser).

The browser's side of the same points is in test_e2e_frictions.py.
"""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.training.suggest import suggested_for
from tlcore.models import create_backbone, frozen_for_preset
from tlcore.insight.plots import roc_figure, training_figures
from tlcore.training.train import train
from tlcore.ui import FOOTER, data_tab, draw_tab, evaluate_tab, fields, model_tab, train_tab
from tlcore.ui.session import DEFAULT_FROZEN, DEFAULT_PRESET, DEFAULT_WEIGHTS, RunRecord, Session
from tlcore.ui.text import escape

from conftest import write_folder, zip_folder


def test_the_first_model_is_a_transfer_from_the_bundled_mnist_model():
    """Item 4: what the README says (the bundled MNIST model) is what the Model tab opens on."""
    s = Session()
    assert s.weights == DEFAULT_WEIGHTS and DEFAULT_WEIGHTS.endswith("assets/models/lenet5-mnist")
    lenet = create_backbone("lenet5", weights="none", num_classes=10)
    assert list(DEFAULT_FROZEN) == frozen_for_preset(lenet, DEFAULT_PRESET) == s.frozen
    assert DEFAULT_WEIGHTS in [v for _, v in model_tab.weight_options(s, "lenet5")]
    # The Train tab opens on that model's suggestion (a linear probe trains its head with AdamW).
    cfg = RunConfig(dataset="digits", weights=DEFAULT_WEIGHTS, preset="linear-probe")
    want = suggested_for(cfg, len(load_dataset("digits").train))
    assert train_tab.first_suggestion() == {k: want[k] for k in train_tab.first_suggestion()}
    assert want["optimizer"] == "adamw"


def test_random_weights_reset_the_freezing_to_full():
    """Item 5: back to weights none after a linear probe, the preset becomes full (a frozen random
    body is no baseline)."""
    s = Session(dataset=load_dataset("digits"))
    _, preset, frozen = model_tab.on_backbone(s, "lenet5", "none", "linear-probe")
    assert preset["value"] == "full" and frozen["value"] == []


@pytest.mark.parametrize("text,shown", [
    ("Expected <class>/<image>", "Expected &lt;class&gt;/&lt;image&gt;"),
    ("a & b", "a &amp; b"), ("plain", "plain"),
])
def test_user_text_is_escaped_for_markdown_and_html(text, shown):
    """Item 6: '<class>/<image>' was eaten as an HTML tag in the toast and the summary."""
    assert escape(text) == shown


def test_a_refused_upload_keeps_every_word(tmp_path):
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as z:
        z.writestr("a.png", b"x")
        z.writestr("b.png", b"y")
    s = Session()
    _, summary, *_ = data_tab.load(s, data_tab.UPLOAD, str(flat), 0, 0.1, 0)
    assert "&lt;class&gt;/&lt;image&gt;" in summary and "<class>" not in summary


def test_the_data_tab_says_a_lone_val_folder_is_the_test_split(tmp_path):
    """Item 7."""
    root = write_folder(tmp_path / "bees", {"train/ants": 10, "train/bees": 10, "val/ants": 4, "val/bees": 4})
    s = Session()
    _, summary, gallery, *_ = data_tab.load(s, data_tab.UPLOAD, str(zip_folder(root, tmp_path / "bees.zip")), 0, 0.1, 0)
    assert "test **8**" in summary and "Your val/ folder is the **test split**" in summary
    assert "is 10% of train/" in summary


@pytest.mark.parametrize("classes,per_class,columns,scrolls", [
    (2, 5, 5, False), (5, 2, 4, False), (7, 2, 4, False), (10, 1, 5, False), (100, 1, 5, True)])
def test_the_examples_show_every_class_without_scrolling(tmp_path, classes, per_class, columns, scrolls):
    """Item 13: ten classes of four in eight columns cut the eighth column and needed scrolling to reach 6-9."""
    d = load_dataset(str(write_folder(tmp_path / "set", {f"c{i:03d}": 10 for i in range(classes)}, size=8)))
    g = data_tab._examples(d)
    assert len(g.value) == classes * per_class and g.columns == columns <= 5  # 5 x 100 px fits any tab
    rows = -(-classes * per_class // columns)
    assert (g.height == data_tab.EXAMPLES_MAX_HEIGHT) is scrolls and (g.height >= 130 * rows or scrolls)


def test_draw_offers_only_models_that_read_grayscale(tmp_path):
    """Item 8: a photo model read a drawn 0 as 'ants 84%'."""
    s = Session()
    gray = load_dataset("digits")
    photos = load_dataset(str(write_folder(tmp_path / "p", {"ants": 6, "bees": 6})))
    for name, data in (("1-digits", gray), ("2-photos", photos)):
        s.add_run(RunRecord(name, None, data, tmp_path / name))
    assert draw_tab.model_choices(s)[:2] == [draw_tab.BUNDLED_LABEL, "1-digits"]
    assert "2-photos" not in draw_tab.model_choices(s)
    assert draw_tab.knows(s, draw_tab.BUNDLED_LABEL).startswith("This model knows 10 classes: 0, 1, 2")


def test_an_empty_canvas_claims_nothing_and_clears_the_map():
    """Item 8: the empty canvas read 'Draw a digit 100%', and the old SmoothGrad map stayed."""
    blank = {"background": None, "layers": [], "composite": torch.zeros(100, 100, 4, dtype=torch.uint8).numpy()}
    assert draw_tab.predict(Session(), draw_tab.BUNDLED_LABEL, blank) == (None, None, None, None)


def test_a_guess_at_a_drawing_already_added_is_not_shown():
    """A guess sent before Add (the canvas not yet cleared) but read after it showed the added
    drawing's label over the cleared canvas; a new drawing is guessed again."""
    from conftest import digit_canvas

    s, model = Session(), draw_tab.BUNDLED_LABEL
    four, seven = ({"background": None, "layers": [], "composite": np.asarray(digit_canvas(d).convert("RGBA"))}
                   for d in "47")
    assert draw_tab.predict(s, model, four)[0]  # guessed before it is added
    draw_tab.add_drawing(s, model, four, "4")
    assert draw_tab.predict(s, model, four) == (None, None, None, None)
    assert draw_tab.predict(s, model, seven)[0]


def test_a_stopped_run_is_evaluated_when_shown(tmp_path):
    """Item 3: 'Saved as run 7' but Evaluate showed the 'train a model first' placeholder."""
    from tlcore.events import StopToken
    from tlcore.events import Callback

    class StopAfterEpoch2(Callback):
        def __init__(self, token):
            self.token = token

        def on_epoch_end(self, trainer, e):
            if e.epoch == 2:
                self.token.stop()

    token = StopToken()
    data = load_dataset("digits")
    r = train(RunConfig(dataset="digits", epochs=6, batch_size=32, lr=0.15), data=data, stop=token,
              callbacks=[StopAfterEpoch2(token)], out=tmp_path / "run")
    assert r.status == "stopped" and r.test is None and r.best_epoch >= 1
    s = Session()
    s.add_run(RunRecord("1-stopped", r, data, tmp_path / "run"))
    summary, heat, table, roc, per_class, gallery, download, caption, card = evaluate_tab.show(s, "1-stopped", "counts")
    assert summary.startswith("### Test accuracy") and "of a run that stopped" in summary
    assert heat is not None and len(table) == 10 and download.endswith("1-stopped.zip")


def test_switching_to_row_shares_redraws_only_the_chart(tmp_path):
    """Item 12: switching to row-normalized reset the gallery to the most confident mistakes."""
    data = load_dataset("digits")
    s = Session()
    s.add_run(RunRecord("1-r", train(RunConfig(dataset="digits", epochs=1), data=data), data, tmp_path))
    fig = evaluate_tab.heatmap(s, "1-r", "row-normalized")
    assert "row-normalized" in fig.layout.title.text


def test_gallery_captions_put_the_confidence_first():
    """Item 12: 'true bees · predic…' hid the confidence."""
    class Ev:
        classes, preds, labels = ["ants", "bees"], [0, 1], [1, 1]
        probs = torch.tensor([[0.84, 0.16], [0.1, 0.9]])

    assert evaluate_tab.caption(Ev, 0) == "predicted ants (84%) · true bees"  # #26 item 8: said, not coded
    assert evaluate_tab.caption(Ev, 1) == "predicted bees (90%)"


def test_legends_leave_the_curves_visible():
    """Item 11: the training legend covered the top of the accuracy curve; ROC's was clipped."""
    from tlcore.events import EpochEvent

    loss, acc = training_figures([], [EpochEvent(1, 2, 1.0, 0.5, 0.9, 0.6, 0.1, 10.0, 1.0, 1.0, True)])
    assert acc.layout.legend.y < 0 and loss.layout.legend.y < 0  # under the plot area
    r = train(RunConfig(dataset="digits", epochs=1))
    legend = roc_figure(r.test).layout.legend
    assert (legend.x, legend.y, legend.xanchor, legend.yanchor) == (0.99, 0.01, "right", "bottom")


def test_the_learning_rate_steps_in_thousandths():
    """Item 14: ArrowUp on 0.01 gave 1.01."""
    assert fields.component("lr").step == 0.001
    assert fields.component("epochs").step == 1


def test_the_body_multiplier_is_greyed_for_a_frozen_body():
    """Item 14: 'Body learning-rate multiplier 1' was offered for a fully frozen body."""
    s = Session()  # the default: the body frozen
    assert train_tab.body_mult(s)["interactive"] is False
    s.frozen = []
    assert train_tab.body_mult(s)["interactive"] is True


def test_another_model_clears_the_last_runs_charts():
    """Item 15: after changing data or model the Train tab kept the previous run's charts."""
    s = Session(dataset=load_dataset("digits"))
    assert train_tab.cleared(s)[1:] != (None, None, "")  # no run shown yet: nothing to clear
    s.charts_for = train_tab._setup_key(s)
    assert train_tab.cleared(s)[1:] != (None, None, "")  # nothing changed: the charts stay
    s.frozen = []
    assert train_tab.cleared(s)[1:] == (None, None, "") and s.charts_for is None


def test_a_second_start_says_a_run_is_going():
    """Item 18."""
    from tlcore.events import StopToken
    from tlcore.ui import jobs

    s = Session()
    s.jobs.open("training", StopToken()).since -= 5  # opened five seconds ago
    with pytest.warns(UserWarning, match="A training is already running"):  # gr.Warning, outside a request
        jobs.busy(s)


def test_gradio_s_own_runs_link_is_not_in_the_footer():
    """Item 17: Gradio's footer 'Runs' link was taken for the app's runs."""
    assert "runs" not in [link.lower() for link in FOOTER] and "api" in FOOTER
