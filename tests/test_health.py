"""A run that explodes ends with advice; one that learns nothing says so; the chart shows a blow-up."""
from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest
import torch

from tlcore.config import RunConfig
from tlcore.events import EpochEvent, StepEvent
from tlcore.training.callbacks import Divergence
from tlcore.training.health import chance_note, explode_threshold, majority_share
from tlcore.insight.plots import training_figures
from tlcore.training.result import Status
from tlcore.training.train import train

DIGITS = dict(dataset="digits", backbone="lenet5", batch_size=32, optimizer="sgd", scheduler="onecycle")


def test_a_loss_that_explodes_ends_the_run_with_advice():
    # lr 5: the loss blows up in the first epoch. Whether it climbs far past guessing while finite
    # (bf16 on a Xeon) or reaches NaN first (fp32, or bf16 on an EPYC) is the CPU's arithmetic; the
    # run fails either way with the same advice.
    r = train(RunConfig(**DIGITS, lr=5, epochs=3))
    assert r.status is Status.FAILED
    assert re.search(r"The training loss (exploded to \S+|became NaN or infinite) at epoch 1, step \d+", r.message)
    assert "the learning rate 5 is too high. Try 0.5, or the suggested settings." in r.message
    assert r.test is None and not r.history  # nothing worth keeping: no epoch ended before the blow-up


@pytest.mark.parametrize("loss, ends", [(1e27, "exploded to 1e+27"), (23.0, None), (float("nan"), "NaN or infinite")])
def test_a_finite_blow_up_is_caught_as_well_as_nan(loss, ends):
    """The rule itself, on any CPU: a running loss 10x what guessing scores (ln 10 = 2.30) ends the
    run as surely as a NaN does."""
    stopped = []
    trainer = SimpleNamespace(data=SimpleNamespace(classes=list("0123456789")),
                              stop_run=lambda status, message: stopped.append((status, message)))
    watch = Divergence(lr=5)
    watch.on_setup(trainer)
    event = StepEvent(epoch=1, step=15, steps=41, loss=loss, accuracy=0.1, lr=5, images_per_second=1.0,
                      eta_seconds=1.0, epochs=3)
    watch.on_loss(trainer, event)
    if not stopped:
        watch.on_step(trainer, event)
    if ends is None:
        assert not stopped
    else:
        assert stopped[0][0] is Status.FAILED and ends in stopped[0][1] and "Try 0.5" in stopped[0][1]


def test_a_run_that_stays_at_chance_is_not_reported_as_a_plain_success():
    # lr 1: nothing explodes past the threshold, but every unit dies and accuracy sits at 10%.
    r = train(RunConfig(**DIGITS, lr=1, epochs=6, precision="fp32"))  # (bf16 on a CPU with AMX: it explodes instead)
    assert r.status is Status.COMPLETED and r.test.accuracy < 0.15
    assert r.message.endswith("It is no better than chance.")
    assert any("learned nothing" in n and "it was 1: try 0.1" in n for n in r.notes)


@pytest.mark.slow  # six epochs to a healthy end
def test_a_healthy_run_has_no_warning():
    r = train(RunConfig(**DIGITS, lr=0.15, epochs=6))  # (two epochs of this are still at chance, and say so)
    assert r.status is Status.COMPLETED and "chance" not in r.message and not r.notes


@pytest.mark.parametrize("val_accuracy,flagged", [(0.105, True), (0.12, True), (0.15, False), (None, False)])
def test_chance_is_the_commonest_class_share(val_accuracy, flagged):
    labels = torch.tensor([0] * 10 + [1] * 9 + list(range(2, 10)) * 9)  # commonest class: 10 of 91
    assert majority_share(labels) == pytest.approx(10 / 91)
    assert (chance_note(val_accuracy, labels, lr=1.0) is not None) is flagged


def test_the_threshold_scales_with_the_class_count():
    assert explode_threshold(10) == pytest.approx(10 * math.log(10))
    assert explode_threshold(2) == pytest.approx(10 * math.log(2))


def _epoch(i, loss):
    return EpochEvent(i, 3, loss, 0.1, loss, 0.1, 0.1, 100.0, 1.0, 1.0, False)


@pytest.mark.parametrize("losses,axis", [([2.3, 1.0, 0.5], "linear"), ([4e27, 2.4, 2.3], "log")])
def test_the_loss_chart_goes_logarithmic_over_decades(losses, axis):
    loss, _ = training_figures([(0.5, losses[0], 0.1)], [_epoch(i + 1, v) for i, v in enumerate(losses)])
    assert (loss.layout.yaxis.type or "linear") == axis
