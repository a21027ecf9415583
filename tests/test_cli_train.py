"""``python -m tlcore train|evaluate|predict`` and the bundled MNIST model, in this process (``cli``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import BUNDLED, ROOT, cli_main, png_bytes


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """Six epochs on digits through the command line, shared by the tests of what it printed and saved."""
    out = tmp_path_factory.mktemp("runs") / "digits-run"
    r = cli_main("train", "--dataset", "digits", "--backbone", "lenet5", "--epochs", "6", "--batch-size", "32",
                 "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout.strip().splitlines()[-1]), r


@pytest.mark.slow  # digits_run: six epochs through the command line
def test_train_json_summary_and_progress_on_stderr(digits_run):
    out, s, r = digits_run
    assert {"checkpoint", "test_accuracy", "val_accuracy", "epochs", "images_per_second", "seconds"} <= set(s)
    assert s["checkpoint"] == str(out) and s["epochs"] == 6 and s["test_accuracy"] > 0.9
    assert "epoch 6/6" in r.stderr and "step/s" in r.stderr  # the tqdm bar and epoch lines
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 6 and metrics["test"]["accuracy"] == s["test_accuracy"]
    saved = metrics["summary"]  # the run's own status and time, as the --json line has them
    assert saved["status"] == s["status"] == "completed" and saved["message"] == s["message"]
    assert metrics["history"][-1]["seconds"] < saved["seconds"] <= s["seconds"]


@pytest.mark.slow  # digits_run: six epochs through the command line
def test_evaluate_reproduces_the_training_accuracy(digits_run, cli):
    out, s, _ = digits_run
    e = json.loads(cli("evaluate", "--checkpoint", str(out), "--json").stdout)
    assert e["accuracy"] == s["test_accuracy"]
    assert np.array(e["confusion_matrix"]).sum() == 359 and 0 < e["macro_auc"] <= 1
    assert len(e["per_class"]) == 10


@pytest.mark.slow  # digits_run: six epochs through the command line
def test_predict_labels_files(digits_run, tmp_path, cli):
    from tlcore.data import load_dataset

    out, _, _ = digits_run
    d = load_dataset("digits")
    paths = []
    for i in range(8):
        p = tmp_path / f"d{i}.png"
        p.write_bytes(png_bytes(d.test.images[i, 0].numpy()))
        paths.append(str(p))
    r = cli("predict", "--checkpoint", str(out), *paths, "--json")
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert [x["image"] for x in lines] == paths
    assert all(abs(sum(x["probabilities"].values()) - 1) < 1e-4 for x in lines)
    right = sum(x["label"] == d.classes[int(d.test.labels[i])] for i, x in enumerate(lines))
    assert right >= 7


@pytest.mark.slow  # 30 epochs: the frozen-body recipe
def test_flags_not_given_follow_the_suggested_recipe(tmp_path, cli):
    """A linear probe from the bundled MNIST model: the frozen-body recipe, except what was typed."""
    from tlcore.config import RunConfig
    from tlcore.training.suggest import SUGGESTED, suggested_for

    out = tmp_path / "probe"
    r = cli("train", "--dataset", "digits", "--backbone", "lenet5", "--weights", str(BUNDLED), "--preset",
            "linear-probe", "--lr", "0.002", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    saved = json.loads((out / "config.json").read_text())["run"]
    want = suggested_for(RunConfig(backbone="lenet5", weights=str(BUNDLED), preset="linear-probe"), 1295)
    assert want["optimizer"] == "adamw" and want["epochs"] == 30  # the frozen-body recipe, not the from-scratch one
    assert {k: saved[k] for k in SUGGESTED} == {**want, "lr": 0.002}
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["epochs"] == 30 and s["test_accuracy"] > 0.9
    # Typed flags are validated before any data is loaded, with the usual one line.
    bad = cli("train", "--dataset", "digits", "--backbone", "lenet5", "--lr", "-1")
    assert bad.returncode == 2 and "Learning rate (lr) must be a number > 0" in bad.stderr


def test_the_bundled_model_on_mnist(shared_data, tmp_path, cli):
    e = json.loads(cli("evaluate", "--checkpoint", str(BUNDLED), "--json").stdout)
    card = (BUNDLED / "README.md").read_text()
    assert e["accuracy"] >= 0.99 and f"{e['accuracy']:.4f}" in card  # the card states what it reaches
    assert np.array(e["confusion_matrix"]).shape == (10, 10) and np.array(e["confusion_matrix"]).sum() == 10_000
    assert e["macro_auc"] >= 0.99
    from torchvision.datasets import MNIST

    ds = MNIST(str(shared_data), train=False, download=False)
    paths = []
    for i in range(20):
        p = tmp_path / f"mnist{i}.png"
        p.write_bytes(png_bytes(ds.data[i].numpy()))
        paths.append(str(p))
    lines = [json.loads(x) for x in cli("predict", "--checkpoint", str(BUNDLED), *paths, "--json").stdout.splitlines()]
    assert [x["label"] for x in lines] == [str(int(t)) for t in ds.targets[:20]]


def test_transfer_from_the_bundled_model(tmp_path, cli):
    r = cli("train", "--dataset", "digits", "--backbone", "lenet5", "--weights", str(BUNDLED), "--preset",
            "linear-probe", "--epochs", "5", "--out", str(tmp_path / "t"), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.splitlines()[-1])
    assert s["test_accuracy"] > 0.8 and "feature cache" in r.stderr
    cfg = json.loads((tmp_path / "t" / "config.json").read_text())
    assert cfg["weights"] == "run:lenet5-mnist" and cfg["run"]["augment"] is False


@pytest.mark.parametrize("args,match", [
    (("train", "--lr", "-1"), "Learning rate (lr) must be a number > 0"),
    (("train", "--epochs", "0"), "Epochs must be a whole number > 0"),
    (("train", "--optimizer", "adam"), "Unknown optimizer 'adam'"),
    (("train", "--backbone", "resnet50"), "Unknown backbone 'resnet50'"),
    (("train", "--backbone", "resnet18", "--weights", "imagenet", "--dataset", "digits"), "could not be downloaded"),
    (("evaluate", "--checkpoint", "/nonexistent"), "is not a run folder"),
    (("predict", "--checkpoint", str(BUNDLED), "/no/such.png"), "Cannot read /no/such.png"),
])
def test_training_errors_are_one_line(args, match, tmp_path, cli):
    r = cli(*args, env={"TORCH_HOME": str(tmp_path)})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and match in lines[0], r.stderr


def test_a_folder_that_is_not_a_run(tmp_path, cli):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    r = cli("evaluate", "--checkpoint", str(tmp_path))
    assert r.returncode == 2 and "config.json is missing" in r.stderr


def test_readme_shows_the_tutorial_recipe(cli):
    readme = (ROOT / "README.md").read_text()
    recipe = ("--backbone vgg11 --weights imagenet --preset linear-probe --optimizer sgd --lr 0.001 "
              "--momentum 0.9 --scheduler step --step-size 7 --gamma 0.1")
    assert recipe in " ".join(readme.replace("\\\n", " ").split())
    # And the parser accepts it as written (stopping at the offline weights, not at a flag).
    r = cli("train", *recipe.split(), "--dataset", "digits", env={"TORCH_HOME": "/nonexistent-cache"})
    assert r.returncode == 2 and "ImageNet weights for vgg11" in r.stderr
