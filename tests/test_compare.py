"""Does transfer help? Fair budgets, nested few-shot subsets, the shared-feature probe, curves that stop."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import BUNDLED, run
from tlcore.studies.compare import Setup, TransferVsScratch, strategy_config, transfer_vs_scratch
from tlcore.studies.curve import ProbeCache, curve, shots_of
from tlcore.config import MAX_EPOCHS
from tlcore.training.suggest import MIN_STEPS, budget, suggested
from tlcore.insight.evaluate import evaluate_probs
from tlcore.events import EpochEvent, StopToken
from tlcore.training.result import RunResult, Status
from tlcore.training.train import train

GROUPS = ["conv1", "conv2", "fc1", "fc2", "head"]


@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_shot_subsets_are_stratified_seeded_and_nested(digits, k):
    a = shots_of(digits, k, seed=0)
    assert torch.bincount(a.train.labels, minlength=10).tolist() == [k] * 10  # k of every class
    assert torch.equal(a.train.images, shots_of(digits, k, seed=0).train.images)  # seeded
    assert not torch.equal(a.train.images, shots_of(digits, k, seed=1).train.images)
    bigger = shots_of(digits, k * 2 + 1, seed=0).train.images
    rows = {r.numpy().tobytes() for r in bigger}
    assert all(r.numpy().tobytes() in rows for r in a.train.images)  # nested: k shots within 2k+1
    assert a.val is digits.val and a.test is digits.test  # every point judged on the same images


@pytest.mark.parametrize("n", [10, 50, 200])
@pytest.mark.parametrize("recipe", ["scratch", "probe", "fine-tune"])
def test_the_budget_gives_small_data_enough_updates_by_one_rule(n, recipe):
    frozen = {"scratch": [], "probe": GROUPS[:-1], "fine-tune": []}[recipe]
    weights = "none" if recipe == "scratch" else "run"
    s = suggested("lenet5", weights, frozen, GROUPS, n)
    drop = n > s["batch_size"] and recipe != "probe"
    steps = n // s["batch_size"] if drop else math.ceil(n / s["batch_size"])
    assert steps * s["epochs"] >= MIN_STEPS or s["epochs"] == MAX_EPOCHS
    assert s["early_stopping"] >= 5  # the epochs were raised: early stopping guards them
    plain = suggested("lenet5", weights, frozen, GROUPS, 4000)  # small data, yet enough steps: the recipe itself
    assert plain["early_stopping"] == 0 and s["batch_size"] <= plain["batch_size"]
    if s["optimizer"] == "sgd":  # a smaller batch, a proportionally smaller rate
        assert s["lr"] == pytest.approx(plain["lr"] * s["batch_size"] / plain["batch_size"])


def test_data_big_enough_keeps_its_recipe():
    recipe = dict(epochs=10, batch_size=32, lr=0.1, optimizer="sgd", scheduler="onecycle", body_lr_mult=1.0)
    assert budget(recipe, 1295, frozen_body=False) == {**recipe, "early_stopping": 0}


def test_five_times_the_budget_is_five_times_the_updates():
    recipe = dict(epochs=10, batch_size=32, lr=0.1, optimizer="sgd", scheduler="onecycle", body_lr_mult=1.0)
    one, five = budget(recipe, 50, frozen_body=False), budget(recipe, 50, frozen_body=False, scale=5)
    steps = [(50 // b["batch_size"]) * b["epochs"] for b in (one, five)]
    assert steps[0] >= MIN_STEPS and steps[1] >= 5 * MIN_STEPS and five["epochs"] <= MAX_EPOCHS


def test_the_shared_feature_probe_is_the_run_train_makes(digits):
    """A probe on rows of the one feature pass against train() computing its own features."""
    cfg = strategy_config("linear-probe", dataset="digits", backbone="lenet5", weights=str(BUNDLED), n_train=50,
                          seed=1, precision="fp32")
    subset = shots_of(digits, 5, seed=1)
    whole = train(cfg, data=subset)
    cache = ProbeCache(digits, cfg, stop=StopToken())
    from tlcore.data.base import few_shot

    idx = few_shot(digits.train.labels, 5, 1)
    probe = cache.probe(cfg, idx, StopToken())
    assert torch.allclose(probe.head.weight, whole.model.head.weight, atol=1e-5)
    assert [e.val_loss for e in probe.history] == pytest.approx([e.val_loss for e in whole.history], rel=1e-5)
    assert probe.best_epoch == whole.best_epoch and probe.test.accuracy == whole.test.accuracy
    # A cache of only the rows a curve uses (here 2-shot and 5-shot sets of seeds 0 and 1) gives the same probe.
    rows = torch.unique(torch.cat([few_shot(digits.train.labels, k, s) for k in (2, 5) for s in (0, 1)]))
    small = ProbeCache(digits, cfg, stop=StopToken(), rows=rows)
    assert len(small.features["train"]) == len(rows) < len(digits.train)
    assert torch.equal(small.probe(cfg, idx, StopToken()).head.weight, probe.head.weight)


def test_a_stopped_curve_keeps_its_finished_points(digits):
    stop, seen = StopToken(), []

    def sink(point):
        seen.append(point)
        if len(seen) == 3:
            stop.stop()

    c = curve(digits, backbone="lenet5", weights=str(BUNDLED), shots=[1, 2], seeds=2,
              strategies=["linear-probe", "scratch"], sink=sink, stop=stop)
    assert c.stopped and c.points == seen and len(c.points) == 3
    assert [(p.shots, p.seed, p.strategy) for p in c.points] == [(1, 0, "linear-probe"), (1, 0, "scratch"),
                                                                  (1, 1, "linear-probe")]
    assert {r["shots"] for r in c.results()} == {1}


def test_the_curve_command_prints_its_results(tmp_path):
    r = run("curve", "--weights", str(BUNDLED), "--shots", "2,all", "--seeds", "2", "--strategies",
            "linear-probe", "--json", "--plot", str(tmp_path / "curve.html"))
    assert r.returncode == 0, r.stderr
    assert "run 1 of 4" in r.stderr and "run 4 of 4" in r.stderr, r.stderr  # where it is, as it goes
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert [(x["shots"], x["strategy"]) for x in out["results"]] == [(2, "linear-probe"), (None, "linear-probe")]
    assert all({"shots", "strategy", "accuracy", "std", "seconds"} <= set(x) for x in out["results"])
    assert out["results"][1]["accuracy"] > out["results"][0]["accuracy"] - 0.1 and "updates" in out["budget"]
    assert (tmp_path / "curve.html").stat().st_size > 10_000


@pytest.mark.parametrize("args,says", [
    (("--shots", "0,5"), "Samples per class are whole numbers >= 1 or 'all'"),
    (("--strategies", "magic"), "Unknown strategy 'magic'"),
    (("--seeds", "0"), "seeds must be a whole number from 1 to 10"),
])
def test_a_bad_curve_request_is_one_line(args, says):
    r = run("curve", "--weights", str(BUNDLED), *args)
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _result(test_acc: float, val: list[float]) -> RunResult:
    n = 100
    labels = np.arange(n) % 2
    right = int(test_acc * n)
    probs = np.eye(2)[np.where(np.arange(n) < right, labels, 1 - labels)]
    history = [EpochEvent(i + 1, len(val), 0.5, 0.5, 0.5, v, 0.1, 1.0, 1.0, 0.0, True) for i, v in enumerate(val)]
    return RunResult(None, None, ["a", "b"], Status.COMPLETED, "", history, len(val),
                     evaluate_probs(labels, probs, ["a", "b"]))


@pytest.mark.parametrize("transfer,scratch,verdict", [
    (0.95, 0.80, "Transfer helps here"), (0.80, 0.95, "transfer does not help"), (0.90, 0.905, "About the same")])
def test_the_summary_says_what_happened_even_when_transfer_hurts(transfer, scratch, verdict):
    duel = TransferVsScratch("lenet5-mnist", _result(transfer, [0.9, 0.95]), _result(scratch, [0.5, 0.7, 0.9]),
                             Setup(20, "every layer", False))
    assert verdict in duel.summary() and f"{transfer:.1%}" in duel.summary()
    head = duel.head_start()  # 90% of the lower best (0.9): epoch 1 from the source, epoch 3 from scratch
    assert head.level == pytest.approx(0.81) and head.epochs == (1, 3) and head.after_one == (0.9, 0.5)


def test_transfer_vs_scratch_from_the_bundled_model_at_five_shots(digits):
    duel = transfer_vs_scratch(shots_of(digits, 5, seed=0), backbone="lenet5", weights=str(BUNDLED))
    assert duel.transfer.config.weights == str(BUNDLED) and duel.scratch.config.weights == "none"
    assert duel.scratch.config.preset == duel.transfer.config.preset == "full"  # like with like
    assert duel.transfer.test.accuracy > duel.scratch.test.accuracy
    head = duel.to_dict()["head_start"]
    assert head["epochs_to_level"]["scratch"] >= head["epochs_to_level"]["transfer"] >= 1
    assert head["after_one_epoch"]["transfer"] > head["after_one_epoch"]["scratch"]
    # How far digits lie from MNIST, from the bundled model's own sample of MNIST (#29): said in its units.
    shift = duel.to_dict()["setup"]["shift"]
    far = shift["targets"][0]["relative"]
    assert shift["source"] == "mnist" and far > 3 and shift["images"] == 300
    assert f"this data lies {far:.1f}x as far from the source's data ('mnist')" in duel.summary()
