"""Learning from the images nobody labelled (tlcore.training.semi) and its line on the curve."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from tlcore.data.base import few_shot
from tlcore.errors import TLCoreError
from tlcore.events import StopToken
from tlcore.studies.compare import strategy_config
from tlcore.studies.curve import SEMI, ProbeCache, check_curve, curve
from tlcore.training.semi import METHODS, pseudo_label
from tlcore.training.suggest import suggested_for

from conftest import BUNDLED


def semi_curve(data, method="label-spreading", seeds=1, shots=1):
    return curve(data, backbone="lenet5", weights=str(BUNDLED), shots=[shots], seeds=seeds,
                 strategies=["linear-probe", SEMI], semi_method=method)


@pytest.mark.parametrize("method", METHODS)
def test_hidden_labels_never_reach_training(digits, method):
    """The same labelled images (5 per class), the pool's labels scrambled: the same pseudo-labels
    and the same head (test accuracy); only their score, which reads the pool's labels after, changes."""
    labelled = few_shot(digits.train.labels, 5, 0)
    labels = digits.train.labels.clone()
    pool = torch.ones(len(labels), dtype=torch.bool)
    pool[labelled] = False
    labels[pool] = (labels[pool] + torch.randint(1, 10, (int(pool.sum()),), generator=torch.Generator().manual_seed(1))) % 10
    poisoned = dataclasses.replace(digits, train=dataclasses.replace(digits.train, labels=labels))
    cfg = strategy_config("linear-probe", dataset="digits", backbone="lenet5", weights=str(BUNDLED), n_train=50)
    runs = []
    for data in (digits, poisoned):
        cache = ProbeCache(data, cfg, stop=StopToken())
        pseudo = cache.pseudo_labels(method, labelled, seed=0)
        sized = dataclasses.replace(cfg, **suggested_for(cfg, len(labelled) + pseudo.used))  # as the curve sizes it
        run = cache.probe(sized, labelled, StopToken(), pseudo)
        runs.append((pseudo, run.test.accuracy, pseudo.accuracy(data.train.labels)))
    (clean, clean_acc, clean_right), (dirty, dirty_acc, dirty_right) = runs
    assert torch.equal(clean.index, dirty.index) and torch.equal(clean.labels, dirty.labels)
    assert clean_acc == dirty_acc and clean.used > 0
    assert clean_right > 0.5 and dirty_right < 0.2  # every pool label was changed: the right ones became wrong


def test_the_selection_is_seeded_and_the_rows_carry_the_pseudo_label_fields(digits):
    a, b = (semi_curve(digits, "self-training", shots=5).to_dict() for _ in range(2))
    assert a["points"] == [dict(p, seconds=q["seconds"]) for p, q in zip(b["points"], a["points"])]
    row = next(r for r in a["results"] if r["strategy"] == SEMI)
    assert 0 < row["pseudo_label_accuracy"] <= 1 and row["unlabelled_used"] > 0
    assert "pseudo_label_accuracy" not in next(r for r in a["results"] if r["strategy"] == "linear-probe")


def test_no_class_takes_more_than_its_share_of_the_pool(method="label-spreading"):
    """A body that sees every pool image near class 0 still labels at most a third of them 0
    (self-training: the next test)."""
    g = torch.Generator().manual_seed(0)
    labelled = torch.eye(3) * 5 + torch.randn(3, 3, generator=g) * 0.01
    pool = labelled[0] + torch.randn(90, 3, generator=g) * 0.1  # all near class 0's example
    p = pseudo_label(method, labelled, torch.arange(3), pool, 3)
    assert p.pool == 90 and 0 < p.used and int((p.labels == 0).sum()) <= 30


def test_self_training_takes_as_many_of_every_class_or_none():
    """Pool images near class 0 only: label spreading gives class 0 its share; self-training, whose
    other classes are sure of nothing, takes nothing rather than class 0 alone (digits' seed 0 at one
    image per class had 129 labels, all "6", before)."""
    g = torch.Generator().manual_seed(0)
    labelled = torch.eye(3) * 5 + torch.randn(3, 3, generator=g) * 0.01
    near0 = labelled[0] + torch.randn(90, 3, generator=g) * 0.1
    assert pseudo_label("self-training", labelled, torch.arange(3), near0, 3).used == 0
    spread = labelled[torch.arange(90) % 3] + torch.randn(90, 3, generator=g) * 0.1  # 30 near each class
    p = pseudo_label("self-training", labelled, torch.arange(3), spread, 3)
    assert p.used > 0 and torch.bincount(p.labels, minlength=3).tolist() == [p.used // 3] * 3


def test_a_semi_supervised_curve_needs_a_source_and_a_known_method(digits):
    with pytest.raises(TLCoreError, match="semi-supervised start from a source model"):
        check_curve([1], 1, [SEMI], "none")
    with pytest.raises(TLCoreError, match="Valid"):
        pseudo_label("fixmatch", torch.zeros(2, 3), torch.arange(2), torch.zeros(4, 3), 2)


def test_the_curve_command_draws_the_semi_supervised_line(cli):
    r = cli("curve", "--dataset", "digits", "--weights", str(BUNDLED), "--shots", "1", "--seeds", "1",
            "--strategies", "linear-probe,semi-supervised", "--semi-supervised", "label-spreading", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["strategy"]: row for row in json.loads(r.stdout.strip().splitlines()[-1])["results"]}
    assert set(rows) == {"linear-probe", SEMI}
    assert rows[SEMI]["unlabelled_used"] > 0 and 0.5 < rows[SEMI]["pseudo_label_accuracy"] <= 1
    assert "unlabelled used" in r.stderr and "of them right" in r.stderr
    bad = cli("curve", "--weights", str(BUNDLED), "--strategies", "semi", "--shots", "1")
    assert bad.returncode == 2 and "Unknown strategy 'semi'" in bad.stderr and "'semi-supervised'" in bad.stderr


def test_the_sentence_says_what_the_unlabelled_images_bought_and_why_not_from_its_numbers():
    from tlcore.studies.verdict import semi_sentence

    rows = [{"shots": 1, "strategy": "linear-probe", "accuracy": 0.881},
            {"shots": 1, "strategy": SEMI, "accuracy": 0.916, "pseudo_label_accuracy": 0.93, "unlabelled_used": 1005},
            {"shots": 5, "strategy": "linear-probe", "accuracy": 0.565},
            {"shots": 5, "strategy": SEMI, "accuracy": 0.552, "pseudo_label_accuracy": 0.55, "unlabelled_used": 6201},
            {"shots": 10, "strategy": "linear-probe", "accuracy": 0.957},
            {"shots": 10, "strategy": SEMI, "accuracy": 0.965, "pseudo_label_accuracy": 0.97, "unlabelled_used": 1199},
            {"shots": 20, "strategy": "linear-probe", "accuracy": 0.6},
            {"shots": 20, "strategy": SEMI, "accuracy": 0.6, "pseudo_label_accuracy": None, "unlabelled_used": 0}]
    said = semi_sentence(rows, "label-spreading")
    assert "added +3.5 points at 1 per class (1,005 unlabelled images labelled by label spreading, 93% of them right)" in said
    assert ("did not help at 5 per class (-1.3 points; 6,201 unlabelled images labelled by label spreading): only 55% "
            "of its labels were right, and the head learnt the 2,790 wrong ones too.") in said
    assert "made no clear difference at 10 per class (+0.8 points; 1,199 unlabelled images" in said
    assert "At 20 per class the unlabelled images were not used" in said
