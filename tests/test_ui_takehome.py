"""The Evaluate tab's take-home parts, through its functions: export, and another labelled set."""
from __future__ import annotations

import gradio as gr
import pytest

from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.training.train import train
from tlcore.ui import evaluate_tab
from tlcore.ui.session import RunRecord, Session

from conftest import write_folder, zip_folder


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    s = Session()
    data = load_dataset("digits")
    folder = s.folder / "1-digits-lenet5"
    s.add_run(RunRecord("1-digits-lenet5", train(RunConfig(dataset="digits", epochs=1), data=data, out=folder),
                        data, folder))
    yield s
    s.cleanup()


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_export_gives_the_model_and_its_card(session, fmt, suffix):
    model, card = evaluate_tab.export(session, "1-digits-lenet5", fmt)
    assert model.endswith("1-digits-lenet5" + suffix) and card.endswith(".MODEL_CARD.md")


def test_an_uploaded_test_only_set_is_evaluated_whole_then_the_run_comes_back(session, tmp_path):
    folder = write_folder(tmp_path / "mine", {f"test/{c}": 3 for c in range(10)}, size=8, rgb=False)
    out = evaluate_tab.show_other(session, "1-digits-lenet5", str(zip_folder(folder, tmp_path / "mine.zip")), "counts")
    assert out[0].startswith("### On mine: accuracy") and "on 30 images" in out[0]
    assert "Evaluated on all of its images (30)" in out[0]
    assert evaluate_tab.show(session, "1-digits-lenet5", "counts")[0].startswith("### Test accuracy")  # its own again


def test_an_upload_with_other_classes_is_refused(session, tmp_path):
    folder = write_folder(tmp_path / "pets", {"cat": 3, "dog": 3}, size=8)
    with pytest.raises(gr.Error, match="do not match the run"):
        evaluate_tab.show_other(session, "1-digits-lenet5", str(zip_folder(folder, tmp_path / "pets.zip")), "counts")
