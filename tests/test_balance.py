"""Skewed classes (issue #29): a long tail made on purpose, the remedies, and the scores that show it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcore.config import BALANCES, RunConfig
from tlcore.data.base import long_tail
from tlcore.data.loader import TensorLoader
from tlcore.errors import TLCoreError
from tlcore.insight.evaluate import evaluate_probs
from tlcore.training import balance
from tlcore.training.loop import load_run_data
from tlcore.training.train import train


def _labels(*counts: int) -> torch.Tensor:
    return torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])


@pytest.mark.parametrize("ratio", [1, 2, 20, 500])
def test_the_long_tail_decays_class_by_class_down_to_one_rth(ratio):
    labels = _labels(180, 175, 190, 178, 181, 177, 179, 176, 183, 180)
    kept = torch.bincount(labels[long_tail(labels, ratio, seed=0)], minlength=10).tolist()
    assert kept[0] == 175  # the smallest class's count leads
    assert kept == sorted(kept, reverse=True) and kept[-1] == max(1, int(175 / ratio))
    assert balance.skew(labels[long_tail(labels, ratio, seed=0)], 10) == pytest.approx(175 / max(1, int(175 / ratio)))


def test_a_run_loads_the_long_tail_it_asks_for():
    data = load_run_data(RunConfig(dataset="digits", imbalance=20, seed=0))
    counts = torch.bincount(data.train.labels, minlength=10)
    assert counts[0] / counts[-1] == pytest.approx(125 / 6) and len(data.test) == 359  # the test split as it was


def test_class_weights_even_out_the_counts():
    assert balance.class_weights(_labels(10, 10, 10), 3).tolist() == [1.0, 1.0, 1.0]
    w = balance.class_weights(_labels(90, 10, 0), 3)
    assert w.tolist() == pytest.approx([100 / (2 * 90), 100 / (2 * 10), 0.0])
    assert float((w[_labels(90, 10)]).sum()) == pytest.approx(100)  # the epoch's total weight is kept


def test_the_balanced_sampler_draws_every_class_alike():
    labels = _labels(950, 50)
    loader = TensorLoader(torch.zeros(1000, 4), labels, batch_size=100, shuffle=True, seed=0)
    loader.weights = balance.sample_weights(labels, 2)
    drawn = torch.cat([y for _, y in loader])
    assert len(drawn) == 1000 and 0.42 < float(drawn.float().mean()) < 0.58  # the rare class: ~half, not 5%
    loader.weights = None
    assert float(torch.cat([y for _, y in loader]).float().mean()) == pytest.approx(0.05)


@pytest.mark.parametrize("choice, counts, mode, says", [
    (None, (40, 12), "none", None),  # 3.3x: under the automatic rule's 4x
    (None, (40, 9), "loss", "4.4x, more than 4x"),
    ("sampler", (40, 9), "sampler", "every class equally often"),
    ("none", (40, 9), "none", None),
    ("loss", (10, 10), "loss", None),  # nothing to even out: nothing to say
])
def test_the_remedy_is_chosen_and_said_with_the_counts(choice, counts, mode, says):
    got, note = balance.resolve(choice, _labels(*counts), ["cat", "dog"])
    assert got == mode
    assert (note is None) if says is None else (says in note and f"{counts[0]} training images of 'cat'" in note)


def test_balanced_accuracy_is_the_mean_recall_over_classes():
    labels = np.array([0] * 8 + [1] * 2)
    preds = np.zeros(10, dtype=int)  # always the common class: 80% right, half the classes never named
    e = evaluate_probs(labels, np.eye(2)[preds], ["common", "rare"])
    assert e.accuracy == pytest.approx(0.8) and e.balanced_accuracy == pytest.approx(0.5)
    assert e.recalls() == {"common": 1.0, "rare": 0.0}


def test_a_skewed_run_reports_each_class_recall_and_its_remedy():
    s = train(RunConfig(dataset="digits", epochs=1, imbalance=20, balance="loss", seed=0)).summary()
    assert s["balance"] == "loss" and s["class_skew"] == pytest.approx(20.83)
    assert list(s["per_class_recall"]) == [str(c) for c in range(10)]
    assert s["balanced_accuracy"] == pytest.approx(np.mean(list(s["per_class_recall"].values())), abs=1e-3)
    assert any("Classes balanced (loss): 125 training images of '0' against 6 of '9'" in n for n in s["notes"])


@pytest.mark.parametrize("field, value, says", [
    ("balance", "weights", "Valid balances: " + ", ".join(f"'{b}'" for b in BALANCES)), ("imbalance", 0.5, "imbalance"),
])
def test_bad_balance_settings_name_the_valid_ones(field, value, says):
    with pytest.raises(TLCoreError, match=says):
        RunConfig(**{field: value}).validate()
