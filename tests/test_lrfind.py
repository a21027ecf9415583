"""The learning-rate finder: its curve, its rules, and that it leaves everything as it was."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.training.suggest import suggested_for
from tlcore.errors import TLCoreError
from tlcore.training.lr_finder import RULES, lr_find, minimum, steep, valley
from tlcore.models import create_backbone
from tlcore.training.train import train
from tlcore.training.loop import load_run_data

from conftest import BUNDLED


@pytest.fixture(scope="module")
def few_digits():
    """60 training images a class: enough for a sweep's few dozen steps."""
    return load_dataset("digits", samples_per_class=60)


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}, [p.requires_grad for p in model.parameters()]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_sweep_leaves_the_model_and_the_random_streams_as_they_were(few_digits, optimizer):
    torch.manual_seed(123)
    model = create_backbone("lenet5", weights="none", num_classes=10)
    weights, grads = _snapshot(model)
    rng = torch.get_rng_state()
    cfg = RunConfig(dataset="digits", optimizer=optimizer, lr=0.01, batch_size=32)
    found = lr_find(cfg, data=few_digits, start=model, steps=40)
    assert torch.equal(torch.get_rng_state(), rng)
    after, after_grads = _snapshot(model)
    assert after_grads == grads and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(weights[k], after[k]) for k in weights)  # bitwise, buffers too
    lrs = np.array(found.lrs)
    assert len(found.losses) == len(lrs) and np.all(np.diff(lrs) > 0)
    assert lrs[0] == pytest.approx(1e-7) and found.lrs[0] <= found.suggested_lr <= found.lrs[-1]


def test_a_run_after_the_sweep_is_the_run_without_it(few_digits):
    cfg = RunConfig(dataset="digits", epochs=1, batch_size=64)
    torch.manual_seed(5)
    alone = train(cfg, data=few_digits).model.state_dict()
    torch.manual_seed(5)
    lr_find(cfg, data=few_digits, steps=20)
    after = train(cfg, data=few_digits).model.state_dict()
    assert all(torch.equal(alone[k], after[k]) for k in alone)


def test_a_frozen_body_sweeps_its_head_on_cached_features(few_digits):
    cfg = RunConfig(dataset="digits", weights=str(BUNDLED), preset="linear-probe", optimizer="adamw", batch_size=32)
    found = lr_find(cfg, data=few_digits, steps=60)
    assert found.stopped_early or len(found.lrs) == 60
    assert min(l for l in found.losses if l is not None) < found.losses[0]  # the head learned on the way


def _curve():
    """Flat, falling linearly in log(rate) between 1e-4 and 1e-1, then blowing up."""
    lrs = np.logspace(-7, 1, 81)
    x = np.log10(lrs)
    losses = np.where(x < -4, 2.3, np.where(x < -1, 2.3 - 0.6 * (x + 4), 0.5 + 3 * (x + 1) ** 2))
    return lrs, losses


def test_each_rule_reads_the_falling_stretch():
    lrs, losses = _curve()
    low = lrs[np.argmin(losses)]
    assert minimum(lrs, losses) == pytest.approx(low / 10)
    for rule in (valley, steep):
        assert 1e-4 <= rule(lrs, losses) < low, rule.__name__
    assert set(RULES) == {"valley", "minimum", "steep"}


def test_bad_sweeps_are_refused_with_the_reason(few_digits):
    cfg = RunConfig(dataset="digits")
    with pytest.raises(TLCoreError, match="rule"):
        lr_find(cfg, data=few_digits, rule="fastest")
    with pytest.raises(TLCoreError, match="start_lr"):
        lr_find(cfg, data=few_digits, start_lr=1.0, end_lr=0.1)


def test_the_cli_prints_the_finding_as_json(tmp_path, cli):
    p = cli("lr-find", "--dataset", "digits", "--samples-per-class", "30", "--steps", "30", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout.strip().splitlines()[-1])
    assert {"suggested_lr", "lrs", "losses", "rule"} <= set(d) and len(d["lrs"]) == len(d["losses"])
    assert "suggested lr" in p.stderr and d["rule"].split(":")[0] in p.stderr


@pytest.mark.slow
def test_lenet5_on_mnist_trains_to_99_percent_at_the_suggested_rate(shared_data):
    cfg = RunConfig(dataset="mnist", data_dir=str(shared_data), backbone="lenet5", optimizer="sgd").validate()
    data = load_run_data(cfg)
    cfg = dataclasses.replace(cfg, **suggested_for(cfg, len(data.train))).validate()
    found = lr_find(cfg, data=data)
    assert 0.01 <= found.suggested_lr <= 1
    r = train(dataclasses.replace(cfg, lr=found.suggested_lr, epochs=3), data=data)
    assert r.test.accuracy >= 0.99, (found.suggested_lr, r.test.accuracy)
