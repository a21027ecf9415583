"""Which source to start from (tlcore.studies.rank): LogME, LEEP and 5-NN accuracy of each
candidate's features, and ``python -m tlcore rank``."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tlcore.errors import TLCoreError
from tlcore.studies.rank import leep, logme, parse_candidates, rank

from conftest import BUNDLED


def test_logme_prefers_features_that_carry_the_labels_to_noise():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 50)
    noise = rng.normal(size=(200, 16))
    informative = noise.copy()
    informative[:, :4] += 3 * np.eye(4)[y]  # a direction per class
    assert logme(informative, y) > logme(noise, y) + 0.1
    assert math.isfinite(logme(rng.normal(size=(40, 100)), np.repeat(np.arange(2), 20)))  # more dims than images


def test_leep_is_near_zero_for_a_head_that_already_knows_and_log_1_over_k_for_one_that_knows_nothing():
    y = np.repeat(np.arange(3), 10)
    sure = np.eye(3)[y] * 0.98 + 0.01
    assert leep(sure, y) > -0.05
    assert leep(np.full((30, 3), 1 / 3), y) == pytest.approx(math.log(1 / 3))


def test_a_source_that_knows_digits_outranks_random_weights_by_every_score(digits):
    r = rank(digits, [("lenet5", "none"), ("lenet5", str(BUNDLED))], per_class=30, check=True)
    first, last = r.candidates
    assert first.weights == str(BUNDLED) and last.weights == "none"  # best LogME first
    assert first.knn_accuracy > last.knn_accuracy and first.leep is not None and last.leep is None
    assert first.probe_accuracy > last.probe_accuracy
    assert r.tau == {"logme": 1.0, "leep": None, "knn_accuracy": 1.0}  # LEEP: one candidate has a source head
    said = r.to_dict()["sentence"]
    assert "LogME puts lenet5 (lenet5-mnist) first and lenet5 (random weights) last" in said
    assert "Trained as linear probes, lenet5 (lenet5-mnist) scored best" in said and "LogME +1.00" in said


@pytest.mark.parametrize("text,says", [("lenet5", "BACKBONE:WEIGHTS"), ("lenet5:none", "at least 2 candidates"),
                                       (":none,lenet5:", "BACKBONE:WEIGHTS")])
def test_candidates_are_backbone_colon_weights(text, says):
    with pytest.raises(TLCoreError, match=says):
        parse_candidates(text)
    assert parse_candidates("timm:resnet18:imagenet, lenet5:none") == [("timm:resnet18", "imagenet"), ("lenet5", "none")]


def test_random_weights_score_the_same_on_every_call(digits):
    """Random weights are the floor of a ranking: drawn from the seed, so that a ranking repeats."""
    a, b = (rank(digits, [("lenet5", "none"), ("lenet5", str(BUNDLED))], per_class=10).candidates for _ in range(2))
    assert [c.logme for c in a] == [c.logme for c in b] and [c.knn_accuracy for c in a] == [c.knn_accuracy for c in b]


def test_the_rank_command_prints_the_candidates_best_first(cli):
    r = cli("rank", "--candidates", f"lenet5:none,lenet5:{BUNDLED}", "--per-class", "20", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert [c["weights"] for c in out["candidates"]] == [str(BUNDLED), "none"]
    assert set(out["candidates"][0]) >= {"backbone", "weights", "logme", "leep", "knn_accuracy", "seconds"}
    assert out["images"] == 200 and "LogME puts" in r.stderr
    bad = cli("rank", "--candidates", "lenet5")
    assert bad.returncode == 2 and "BACKBONE:WEIGHTS" in bad.stderr


def test_the_model_tabs_ranking_shows_a_table_best_first_and_its_sentence(digits):
    from tlcore.ui import rank_panel
    from tlcore.ui.session import Session

    s = Session(dataset=digits)
    refused = list(rank_panel.run_rank(s, ["LeNet-5, random weights"]))
    assert "Tick at least 2 of" in refused[-1][1] and s.jobs.job is None
    frames = list(rank_panel.run_rank(s, ["LeNet-5, random weights", "LeNet-5 from MNIST (bundled)"]))
    assert any("Scoring lenet5" in f[1] for f in frames[:-1])
    table, said = frames[-1]
    assert list(table["candidate"]) == ["LeNet-5 from MNIST (bundled)", "LeNet-5, random weights"]
    assert "LogME puts lenet5 (lenet5-mnist) first" in said and "Scored on 500 training images" in said
    assert s.jobs.job is None  # the slot is given back
