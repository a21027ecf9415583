"""Gradual unfreezing: which parameters learn in which epoch, and at what rate (discriminative rates)."""
from __future__ import annotations

import pytest

from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.events import Callback
from tlcore.models import HEAD, create_backbone, freeze
from tlcore.training.optim import group_rates
from tlcore.training.train import train
from tlcore.training.unfreeze import plan

from conftest import BUNDLED


class GradientLog(Callback):
    """After every step: the layer groups whose parameters got a non-zero gradient, per epoch."""

    step_interval_s = 0.0  # every step

    def __init__(self):
        self.learned: dict[int, set[str]] = {}
        self.unfreezes, self.rates = [], []

    def on_step(self, trainer, event):
        got = self.learned.setdefault(event.epoch, set())
        for g in trainer.model.group_names():
            if any(p.grad is not None and bool(p.grad.any()) for _, p in trainer.model.group_parameters(g)):
                got.add(g)

    def on_unfreeze(self, trainer, event):
        self.unfreezes.append(event)

    def on_run_start(self, trainer, info):
        # Each optimizer group's rate, named by the layer group its parameters belong to.
        model, opt = trainer.model, trainer.step.optimizer
        owner = {id(p): g for g in model.group_names() for _, p in model.group_parameters(g)}
        self.rates = [(owner[id(pg["params"][0])], pg["lr"]) for pg in opt.param_groups]


@pytest.fixture(scope="module")
def digits40():
    """40 training images per class (conftest's ``digits`` has them all)."""
    return load_dataset("digits", samples_per_class=40)


def _run(digits, every: int, epochs: int, decay: float = 0.5) -> GradientLog:
    log = GradientLog()
    cfg = RunConfig(dataset="digits", weights=str(BUNDLED), preset="full", epochs=epochs, batch_size=64,
                    lr=0.05, body_lr_mult=0.5, layer_lr_decay=decay, unfreeze_every=every, augment=False)
    train(cfg, data=digits, callbacks=[log])
    return log


def test_the_head_learns_alone_then_one_group_joins_per_epoch_from_the_top(digits40):
    body = [g for g in create_backbone("lenet5", weights="none", num_classes=10).group_names() if g != HEAD]
    log = _run(digits40, every=1, epochs=len(body) + 1)
    top_down = body[::-1]
    for epoch in range(1, len(body) + 2):
        assert log.learned[epoch] == {HEAD, *top_down[:epoch - 1]}, f"epoch {epoch}"
    assert [u.thawed for u in log.unfreezes] == [[g] for g in top_down]
    assert [u.epoch for u in log.unfreezes] == list(range(2, len(body) + 2))


def test_deeper_groups_learn_at_lower_rates(digits40):
    log = _run(digits40, every=2, epochs=3)
    assert log.learned[1] == {HEAD} and log.learned[3] == {HEAD, "fc2"}
    by_group = dict(log.rates)  # weight and bias groups of one layer group share a rate
    order = [HEAD, "fc2", "fc1", "conv2", "conv1"]
    lrs = [by_group[g] for g in order]
    assert all(a > b for a, b in zip(lrs, lrs[1:])), lrs
    # The rates keep the planned ratios whatever the schedule has made of them.
    model = create_backbone("lenet5", weights="none", num_classes=10)
    planned = group_rates(model, RunConfig(lr=0.05, body_lr_mult=0.5, layer_lr_decay=0.5))
    assert [lr / lrs[0] for lr in lrs] == pytest.approx([planned[g] / planned[HEAD] for g in order])


def test_without_decay_the_body_is_one_group_as_before(digits40):
    log = _run(digits40, every=0, epochs=1, decay=1.0)
    assert {g for g, _ in log.rates} == {HEAD, "conv1"}  # head, then the body's first parameter's group
    assert log.learned[1] == {HEAD, "conv1", "conv2", "fc1", "fc2"}


def test_the_plan_thaws_only_what_the_preset_lets_train():
    model = freeze(create_backbone("lenet5", weights="none", num_classes=10), preset="finetune-top-2")
    assert plan(model, every=2, epochs=7) == [(1, [HEAD]), (3, [HEAD, "fc2"]), (5, [HEAD, "fc2", "fc1"])]
    assert plan(model, every=0, epochs=7) == [(1, [HEAD, "fc2", "fc1"])]


def test_a_frozen_body_has_nothing_to_thaw_and_says_so(digits40):
    cfg = RunConfig(dataset="digits", weights=str(BUNDLED), preset="linear-probe", epochs=2, batch_size=16,
                    unfreeze_every=1)
    r = train(cfg, data=digits40)
    assert any("nothing to thaw" in n for n in r.notes)
    assert r.status == "completed"
