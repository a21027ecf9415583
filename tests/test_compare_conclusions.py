"""Issue #25, "the lesson tells the truth": conclusions that hold.

Transfer vs scratch names the cause its measurements support (images per class, a frozen body
against every layer training, the source's measured distance), never a stock sentence; its
head-start figures are the chart's own numbers; studies say where they are; the forgetting
demonstration forgets; runs are named by what sets them apart.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import BUNDLED
from tlcore.config import RunConfig
from tlcore.errors import TLCoreError
from tlcore.events import EpochEvent
from tlcore.insight.evaluate import evaluate_probs
from tlcore.insight.plots import overlay_figure
from tlcore.runs.names import run_name
from tlcore.studies.compare import Setup, TransferVsScratch, transfer_vs_scratch
from tlcore.studies.curve import curve, shots_of
from tlcore.studies.forgetting import forgetting_demo
from tlcore.studies.progress import Clock, Planned, Speed
from tlcore.studies.verdict import REACH, SourceFit, curve_sentence
from tlcore.training.result import RunResult, Status

NEAR = SourceFit(0.969, 0.905, 359)  # lenet5-mnist on digits' test images; random weights of seed 0 (measured)
FAR = SourceFit(0.320, 0.306, 500)  # lenet5-mnist on cifar10-mini (measured)
TRANSFER_FAST = [0.89, 0.93, 0.95, 0.96]  # what the chart shows: the source near its best after one epoch
SCRATCH_SLOW = [0.10, 0.10, 0.40, 0.80, 0.90, 0.96]


def _result(test_acc: float, val: list[float]) -> RunResult:
    """A finished run with this test accuracy (on 1000 two-class images) and these validation accuracies."""
    n = 1000
    labels = np.arange(n) % 2
    probs = np.eye(2)[np.where(np.arange(n) < round(test_acc * n), labels, 1 - labels)]
    history = [EpochEvent(i + 1, len(val), 0.5, 0.5, 0.5, v, 0.1, 1.0, 1.0, 0.0, True) for i, v in enumerate(val)]
    return RunResult(None, None, ["a", "b"], Status.COMPLETED, "", history, len(val),
                     evaluate_probs(labels, probs, ["a", "b"]))


def _duel(transfer: float, scratch: float, *, per_class: float, frozen: bool, fit: SourceFit | None,
          t_val=TRANSFER_FAST, s_val=SCRATCH_SLOW) -> TransferVsScratch:
    trains = "only its new head (the body frozen)" if frozen else "every layer"
    return TransferVsScratch("lenet5-mnist", _result(transfer, t_val), _result(scratch, s_val),
                             Setup(per_class, trains, frozen, fit))


# (transfer test, scratch test, per class, frozen body, fit) -> the cause, and words it must and must not say
CASES = {
    "the issue's default: frozen probe vs scratch on all digits": (
        (0.975, 0.989, 129.5, True, NEAR), "frozen-body", ["only its new head", "129.5 images per class", "frozen",
                                                            "97.5%", "98.9%"], ["far"]),
    "fine-tuned whole on all digits: about level": (
        (0.990, 0.982, 129.5, False, NEAR), "enough-data", ["every layer", "129.5 images per class", "speed"],
        ["far", "frozen"]),
    "fine-tuned at 5 per class: little data": (
        (0.978, 0.922, 5, False, NEAR), "little-data", ["5 images per class", "Little data", "96.9%", "90.5%"],
        ["far", "frozen"]),
    "a frozen body at 5 per class still wins": (
        (0.950, 0.922, 5, True, NEAR), "little-data", ["Even with only its head training", "5 images per class"],
        ["far"]),
    "a far source loses on plenty of data": (
        (0.550, 0.600, 900, False, FAR), "far-source", ["far from this task", "32.0%", "30.6%", "900 images"],
        ["frozen"]),
    "a near source that loses is not called far": (
        (0.960, 0.975, 129.5, False, NEAR), "enough-data", ["chance", "129.5 images per class", "96.9%"], ["far"]),
    "distance unmeasured: never called far": (
        (0.550, 0.600, 900, False, None), "enough-data", ["900 images per class"], ["far", "5-NN", "neighbours"]),
    "transfer ahead on plenty of data": (
        (0.990, 0.960, 129.5, False, NEAR), "source-features", ["3.0 points behind", "129.5 images"], ["far"]),
    "a frozen body level with scratch": (
        (0.985, 0.986, 129.5, True, NEAR), "frozen-matches", ["features, frozen, do as well", "129.5 images"], ["far"]),
}


@pytest.mark.parametrize("case", CASES)
def test_the_stated_cause_matches_the_settings(case):
    (t, s, per_class, frozen, fit), key, says, never = CASES[case]
    duel = _duel(t, s, per_class=per_class, frozen=frozen, fit=fit)
    summary, d = duel.summary(), duel.to_dict()
    assert d["cause"]["key"] == key
    for words in says:
        assert words in summary, (words, summary)
    for words in never:
        assert words not in d["cause"]["sentence"], (words, d["cause"]["sentence"])
    assert "A source far from the target can hurt" not in summary  # the old stock sentence
    assert f"{per_class:g} images per class" in d["cause"]["sentence"]  # every cause quotes the data it rests on
    # which arm trains what is always said
    assert f"from lenet5-mnist, {'only its new head' if frozen else 'every layer'}" in summary
    assert "from scratch, every layer trains" in summary


@pytest.mark.parametrize("t,s,key,says", [
    (0.960, 0.985, "frozen-body", "The transfer run trains only fc1, fc2, head (conv1, conv2 frozen), while scratch"),
    (0.985, 0.986, "frozen-matches", "training only fc1, fc2, head (conv1, conv2 frozen), do as well"),
])
def test_a_body_frozen_in_part_is_named_as_such(t, s, key, says):
    duel = TransferVsScratch("lenet5-mnist", _result(t, TRANSFER_FAST), _result(s, SCRATCH_SLOW),
                             Setup(129.5, "fc1, fc2, head (conv1, conv2 frozen)", False, NEAR))
    assert duel.verdict()[1] == key and says in duel.summary()
    assert "Both runs train every layer" not in duel.summary()


@pytest.mark.parametrize("t1,says,never", [(0.89, "speed: 89.0% vs 10.0%", "does not start"),
                                           (0.05, "", "speed")])
def test_speed_is_claimed_only_when_the_first_epoch_shows_it(t1, says, never):
    duel = _duel(0.990, 0.982, per_class=129.5, frozen=False, fit=NEAR, t_val=[t1, 0.96])
    assert says in duel.verdict()[2] and never not in duel.verdict()[2]
    slow = _duel(0.978, 0.922, per_class=5, frozen=False, fit=NEAR, t_val=[t1, 0.96])
    assert ("starts ahead" in slow.verdict()[2]) == (t1 > 0.10)


def test_the_head_start_figures_are_the_charts_numbers():
    """The summary's numbers and the chart's data, from one result: after one epoch, and the
    epochs to a level both reach. (The issue: '56 epochs vs 54' beside a chart at 90% vs 10%.)"""
    duel = _duel(0.978, 0.922, per_class=5, frozen=False, fit=NEAR)
    _check_against_chart(duel)
    head = duel.to_dict()["head_start"]
    assert head["epochs_to_level"] == {"transfer": 1, "scratch": 5}  # 0.9 * 0.96 = 0.864: epoch 1 vs epoch 5
    assert head["after_one_epoch"] == {"transfer": 0.89, "scratch": 0.10}


def _check_against_chart(duel: TransferVsScratch) -> None:
    fig = overlay_figure(duel.histories())  # what the Compare tab draws from the same histories
    lines = {trace.name: (list(trace.x), list(trace.y)) for trace in fig.data}
    d, summary = duel.to_dict(), duel.summary()
    head = d["head_start"]
    for arm, label in (("transfer", "from lenet5-mnist"), ("scratch", "from scratch")):
        x, y = lines[label]
        assert y[0] == head["after_one_epoch"][arm] and x[0] == 1
        assert f"{y[0]:.1%} from {label[5:]}" in summary
        first = next(xi for xi, yi in zip(x, y) if yi >= head["level"])
        assert first == head["epochs_to_level"][arm]
        assert d["curves"][label] == y
    weaker = min(max(lines[label][1]) for label in lines)
    assert head["level"] == pytest.approx(REACH * weaker) and f"To reach {head['level']:.1%}" in summary
    epochs = re.search(r"To reach [\d.]+% \(.*?\): (\d+) epochs? from lenet5-mnist, (\d+) epochs? from scratch",
                       summary)
    assert epochs and [int(g) for g in epochs.groups()] == [head["epochs_to_level"]["transfer"],
                                                          head["epochs_to_level"]["scratch"]]


def test_real_runs_at_five_per_class_both_fine_tuned(digits):
    """The lesson's step 2, short: every layer trains in both arms, the settings given win, and the
    source starts ahead after one epoch."""
    seen = []
    duel = transfer_vs_scratch(shots_of(digits, 5, seed=0), backbone="lenet5", weights=str(BUNDLED), epochs=2,
                               early_stopping=0, progress=seen.append)
    assert duel.transfer.config.preset == "full" and duel.scratch.config.weights == "none"
    assert len(duel.transfer.history) == len(duel.scratch.history) == 2  # the fixed epochs won
    assert duel.setup.transfer_trains == "every layer" and not duel.setup.body_frozen
    assert duel.setup.fit.distance == "near" and duel.setup.per_class == 5
    head = duel.head_start()
    assert head.after_one[0] > head.after_one[1] + 0.3  # MNIST reads digits at once; scratch is at chance
    assert duel.verdict()[1] == "little-data"
    _check_against_chart(duel)
    assert [p.text.split(" (")[0] for p in seen[:2]] == ["run 1 of 2", "run 2 of 2"]
    assert seen[0].left_s is not None  # before anything trained: from a few timed steps
    assert seen[-1].done and seen[-1].sentence == duel.sentence() and "wins" in duel.sentence()


def test_a_frozen_body_is_said_plainly(digits):
    duel = transfer_vs_scratch(shots_of(digits, 20, seed=0), backbone="lenet5", weights=str(BUNDLED),
                               preset="linear-probe", epochs=2, early_stopping=0, measure_source=False)
    assert duel.setup.body_frozen and duel.setup.fit is None
    summary, (side, key, _) = duel.summary(), duel.verdict()
    assert "from lenet5-mnist, only its new head (the body frozen) trains" in summary
    assert key == {"scratch": "frozen-body", "transfer": "little-data", "even": "frozen-matches"}[side]


def test_transfer_vs_scratch_refuses_no_source(digits):
    with pytest.raises(TLCoreError, match="weights='none'"):
        transfer_vs_scratch(digits, backbone="lenet5", weights="none")


# -- progress ---------------------------------------------------------------------------------------
def test_the_clock_learns_the_pace_from_the_first_runs():
    plan = [Planned("a", "scratch", 100, 0), Planned("b", "scratch", 200, 0), Planned("c", "linear-probe", 100, 0)]
    seen = []
    clock = Clock(plan, seen.append, Speed({"scratch": 0.01, "linear-probe": 0.001}, 0.0))
    assert clock.estimate() == pytest.approx(1 + 2 + 0.1)
    clock.begin(0)
    assert seen[-1].left_s == pytest.approx(3.1) and seen[-1].text == "run 1 of 3 (a), about 3 seconds left"
    clock.end(0, 4.0)  # four times slower than the timed steps said
    clock.begin(1)
    # scratch: 4x its guess; the probe, with none of its own kind done yet, the same 4x
    assert seen[-1].left_s == pytest.approx(8 + 0.4) and seen[-1].run == 2
    clock.end(1, 8.0)
    clock.finish("Done.")
    assert seen[-1].done and seen[-1].text.endswith("Done.")


def test_a_curve_says_where_it_is_and_what_it_found(digits):
    seen = []
    c = curve(digits, backbone="lenet5", weights=str(BUNDLED), shots=[2, 20], seeds=1,
              strategies=["linear-probe", "scratch"], progress=seen.append, epochs=2, early_stopping=0)
    runs = [p for p in seen if not p.done]
    assert [(p.run, p.runs) for p in runs] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert runs[0].label == "linear-probe, 2 per class, seed 0" and runs[0].left_s is not None
    assert all(re.fullmatch(r"run \d of 4 \(.+\), about \d+ (seconds?|minutes)( left)", p.text) for p in runs)
    assert seen[-1].done and seen[-1].sentence == c.sentence() == c.to_dict()["sentence"]
    at_two = {r["strategy"]: r["accuracy"] for r in c.results() if r["shots"] == 2}
    assert f"{max(at_two, key=at_two.get)} at 2" in c.sentence()


@pytest.mark.parametrize("rows,says", [
    ({1: (0.60, 0.20), 5: (0.90, 0.70), None: (0.985, 0.990)},
     ["fine-tune at 1 to 5 per class (60.0% at 1)", "scratch at all per class",
      "scratch overtakes fine-tune between 5 and all per class (5: 70.0% vs 90.0%; all: 99.0% vs 98.5%)"]),
    ({1: (0.60, 0.20), None: (0.99, 0.98)}, ["fine-tune at 1 to all per class", "The lines do not cross."]),
])
def test_the_curve_sentence_is_written_from_its_numbers(rows, says):
    results = [{"shots": k, "strategy": s, "accuracy": acc[i]} for k, acc in rows.items()
               for i, s in enumerate(("fine-tune", "scratch"))]
    sentence = curve_sentence(results)
    for words in says:
        assert words in sentence, sentence


# -- forgetting and names ---------------------------------------------------------------------------
@pytest.mark.parametrize("weights", ["imagenet", "none"])
def test_the_forgetting_demo_needs_a_source_with_its_own_test_images(digits, weights):
    with pytest.raises(TLCoreError, match=f"got '{weights}'"):
        forgetting_demo(digits, weights=weights)


@pytest.mark.slow
def test_strong_fine_tuning_forgets_and_a_regularizer_keeps(digits):
    """The issue's figures (benchmarks/forgetting.py): plain lr 0.1 with the body at 1x loses >= 30
    points of MNIST; L2-SP or LwF keeps >= 20 of them."""
    demo = forgetting_demo(digits, weights=BUNDLED)
    plain = demo.get("plain")
    assert demo.before - plain.after >= 0.30, demo.sentence()
    assert max(k.after for k in demo.runs if k is not plain) - plain.after >= 0.20, demo.sentence()
    assert f"{demo.before:.1%} to {plain.after:.1%}" in demo.sentence()
    assert demo.get("L2-SP 0.03").name == "digits · from MNIST · full · L2-SP 0.03"


@pytest.mark.parametrize("cfg,others,name", [
    (dict(weights=str(BUNDLED), l2sp=0.03), [], "digits · from MNIST · full · L2-SP 0.03"),
    (dict(weights=str(BUNDLED), preset="linear-probe"), [], "digits · from MNIST · linear-probe"),
    (dict(weights="none"), [], "digits · from scratch · full"),
    (dict(weights="imagenet", backbone="resnet18", frozen=["stem"], preset=None), [],
     "digits · from ImageNet · frozen: stem"),
    (dict(weights=str(BUNDLED), lr=0.1, lwf_weight=1.0), [dict(weights=str(BUNDLED), lr=0.01)],
     "digits · from MNIST · full · LwF 1 · lr 0.1"),
    (dict(dataset="mnist", weights="none", seed=1), [dict(dataset="mnist", weights="none", seed=0)],
     "MNIST · from scratch · full · seed 1"),
])
def test_a_run_is_named_by_what_sets_it_apart(cfg, others, name):
    base = dict(dataset="digits", backbone="lenet5")
    assert run_name(RunConfig(**{**base, **cfg}), [RunConfig(**{**base, **o}) for o in others]) == name


def test_a_saved_runs_config_is_named_too(tmp_path):
    import json

    run = json.loads((BUNDLED / "config.json").read_text())["run"]
    assert run_name(run) == "MNIST · from scratch · full"
    assert run_name({**run, "dataset": str(tmp_path / "my_photos.zip"), "weights": str(tmp_path / "gone")}) == \
        "my_photos · from gone · full"
    with pytest.raises(TLCoreError, match="got str"):
        run_name("digits")
