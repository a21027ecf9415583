"""A saved run continued to more epochs: exactly where it was, from its files alone."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tlcore.config import RunConfig
from tlcore.errors import TLCoreError
from tlcore.training.resume import continue_run
from tlcore.training.train import train

RECIPE = dict(dataset="digits", backbone="lenet5", batch_size=32, lr=0.1, optimizer="sgd", step_size=3)
CURVE = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "best")


def _curve(history):
    return [tuple(getattr(e, k) if not isinstance(e, dict) else e[k] for k in CURVE) for e in history]


@pytest.mark.slow  # three trainings a scheduler
@pytest.mark.parametrize("scheduler", ["step", "constant"])
def test_two_epochs_continued_to_four_equal_four(tmp_path, scheduler):
    two = train(RunConfig(**RECIPE, scheduler=scheduler, epochs=2), out=tmp_path / "two")
    back = continue_run(tmp_path / "two", 4, out=tmp_path / "back")
    four = train(RunConfig(**RECIPE, scheduler=scheduler, epochs=4), out=tmp_path / "four")
    assert len(back.history) == 4 and _curve(back.history) == _curve(four.history)
    assert _curve(back.history)[:2] == _curve(two.history)  # one continuous curve
    for a, b in zip(back.model.state_dict().values(), four.model.state_dict().values()):
        assert torch.equal(a, b)
    assert back.test.accuracy == four.test.accuracy
    assert (tmp_path / "two" / "model.safetensors").exists()  # the original run is left as it was


@pytest.mark.slow  # three trainings
def test_the_cli_continues_a_run_bitwise(tmp_path, cli):
    base = ["train", "--dataset", "digits", "--scheduler", "step", "--batch-size", "32", "--lr", "0.1",
            "--optimizer", "sgd"]
    assert cli(*base, "--epochs", "2", "--out", str(tmp_path / "two")).returncode == 0
    assert cli(*base, "--epochs", "4", "--out", str(tmp_path / "four")).returncode == 0
    out = cli("train", "--resume", str(tmp_path / "two"), "--epochs", "4", "--out", str(tmp_path / "back"))
    assert out.returncode == 0, out.stderr
    a, b = load_file(str(tmp_path / "back" / "model.safetensors")), load_file(str(tmp_path / "four" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_schedule_planned_for_the_first_length_restarts_and_says_so(tmp_path):
    train(RunConfig(**RECIPE, scheduler="onecycle", epochs=2), out=tmp_path / "two")
    back = continue_run(tmp_path / "two", 3, out=tmp_path / "back")
    assert len(back.history) == 3 and back.status == "completed"
    assert any("warm restart" in n for n in back.notes)


def test_changed_or_missing_state_starts_nothing(tmp_path):
    train(RunConfig(**RECIPE, epochs=1), out=tmp_path / "one")
    with pytest.raises(TLCoreError, match="has trained 1 epochs already"):
        continue_run(tmp_path / "one", 1)
    other = train(RunConfig(**RECIPE, epochs=1, seed=5), out=tmp_path / "other")
    (tmp_path / "one" / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(TLCoreError, match="model.safetensors changed since the run was saved"):
        continue_run(tmp_path / "one", 3, out=tmp_path / "never")
    assert not (tmp_path / "never").exists() and other.status == "completed"
    import shutil

    shutil.rmtree(tmp_path / "other" / "resume")
    with pytest.raises(TLCoreError, match="holds no training state"):
        continue_run(tmp_path / "other", 3)


def test_a_run_folder_has_its_model_card(tmp_path):
    train(RunConfig(**RECIPE, epochs=1), out=tmp_path / "one")
    card = (tmp_path / "one" / "MODEL_CARD.md").read_text()
    for words in ("Backbone: `lenet5`", "Classes (10): 0, 1", "Dataset: `digits`", "Accuracy ", "Intended use"):
        assert words in card
