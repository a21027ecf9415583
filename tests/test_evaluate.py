"""Evaluation math against scikit-learn, and checkpoints that never unpickle."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score

from tlcore.runs.checkpoints import load_run, save_run
from tlcore.errors import TLCoreError
from tlcore.insight.evaluate import evaluate, evaluate_probs
from tlcore.models import create_backbone


def _fake(n=300, k=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return labels, probs


def test_metrics_match_sklearn():
    labels, probs = _fake()
    ev = evaluate_probs(labels, probs, ["a", "b", "c", "d"])
    assert ev.accuracy == pytest.approx(accuracy_score(labels, probs.argmax(1)))
    assert ev.macro.auc == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
    onehot = np.eye(4)[labels]
    assert ev.micro.auc == pytest.approx(roc_auc_score(onehot, probs, average="micro"))
    assert ev.confusion.sum() == 300 and (np.diag(ev.confusion).sum() / 300) == pytest.approx(ev.accuracy)
    assert ev.confusion_normalized.sum(1) == pytest.approx(np.ones(4))
    assert list(ev.per_class.columns) == ["class", "precision", "recall", "f1", "support"]
    assert ev.per_class["support"].tolist() == np.bincount(labels, minlength=4).tolist()
    assert set(ev.roc) == {"a", "b", "c", "d"}


def test_most_confident_wrong_and_cells():
    labels, probs = _fake()
    ev = evaluate_probs(labels, probs, list("abcd"))
    wrong = ev.most_confident_wrong(10)
    conf = probs[wrong, probs[wrong].argmax(1)]
    assert (ev.preds[wrong] != labels[wrong]).all() and (np.diff(conf) <= 0).all()
    cell = ev.cell(0, 1)
    assert ((labels[cell] == 0) & (ev.preds[cell] == 1)).all() and len(cell) == ev.confusion[0, 1]


def test_a_class_missing_from_the_test_set_does_not_break_roc():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    ev = evaluate_probs(labels, probs, ["x", "y", "z"])
    assert set(ev.roc) == {"x", "y"} and np.isfinite(ev.macro.auc)
    assert ev.confusion_normalized[2].sum() == 0  # no "z" rows


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    torch.manual_seed(0)
    m = create_backbone("mobilenet_v3_small", num_classes=3, image_size=32).eval()
    save_run(tmp_path / "run", m, ["a", "b", "c"], config={"dataset": "x"}, metrics={"accuracy": 1.0})
    back, meta = load_run(tmp_path / "run")
    x = torch.randint(0, 256, (5, 3, 40, 40), dtype=torch.uint8)
    a, b = evaluate(m, x, torch.zeros(5, dtype=torch.long), list("abc")), \
        evaluate(back, x, torch.zeros(5, dtype=torch.long), list("abc"))
    assert np.array_equal(a.probs, b.probs)
    assert meta["classes"] == ["a", "b", "c"] and back.classes == ["a", "b", "c"] and meta["run"] == {"dataset": "x"}
    assert (tmp_path / "run" / "metrics.json").is_file()


class _Evil:
    def __reduce__(self):
        return (open, ("/tmp/tlcore-pwned", "w"))


def test_a_pickle_posing_as_a_checkpoint_never_runs(tmp_path):
    save_run(tmp_path / "run", create_backbone("lenet5", num_classes=3), ["a", "b", "c"])
    (tmp_path / "run" / "model.safetensors").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(TLCoreError, match="not a readable safetensors"):
        load_run(tmp_path / "run")
    import os
    assert not os.path.exists("/tmp/tlcore-pwned")


@pytest.mark.parametrize("damage,match", [
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:200]), "not a readable"),
    (lambda d: (d / "config.json").write_text((d / "config.json").read_text().replace('"lenet5"', '"resnet18"')),
     "do not fit a resnet18"),
    (lambda d: (d / "config.json").write_text('{"format": "someone-else/1"}'), "not a tlcore run config"),
])
def test_broken_or_foreign_runs_are_refused(tmp_path, damage, match):
    save_run(tmp_path / "run", create_backbone("lenet5", num_classes=3), ["a", "b", "c"])
    damage(tmp_path / "run")
    with pytest.raises(TLCoreError, match=match):
        load_run(tmp_path / "run")
