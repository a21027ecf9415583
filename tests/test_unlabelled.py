"""Images nobody labelled: where they come from (tlcore.data.unlabelled) and a run that learns from
them (``train --semi-supervised``, tlcore.training.semi)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tlcore.config import RunConfig
from tlcore.data import load_dataset, load_labelled
from tlcore.data.base import UNKNOWN
from tlcore.data.unlabelled import hide_labels, load_unlabelled, with_pool
from tlcore.errors import TLCoreError
from tlcore.training.train import train

from conftest import BUNDLED, class_image, png_bytes, quick, write_folder, zip_folder

BROKEN = {"broken.jpg": b"\xff\xd8\xff\xe0 definitely not a jpeg", "notes.txt": b"hello"}


def _with_pool(root, where="unlabelled", n=6):
    """``root``'s images plus ``n`` unlabelled ones (class 0's pictures) and two bad files in ``where``."""
    pool = root / where
    pool.mkdir(parents=True)
    for j in range(n):
        (pool / f"u{j}.png").write_bytes(png_bytes(class_image(0, 16, seed=100 + j)))
    for name, data in BROKEN.items():
        (pool / name).write_bytes(data)
    return root


@pytest.mark.parametrize("layout,where", [
    ({"a": 6, "b": 6}, "unlabelled"),
    ({"a": 6, "b": 6}, "Unlabeled"),
    ({"train/a": 5, "train/b": 5, "test/a": 2, "test/b": 2}, "unlabelled"),
    ({"train/a": 5, "train/b": 5, "test/a": 2, "test/b": 2}, "train/unlabelled"),
])
@pytest.mark.parametrize("as_zip", [False, True])
def test_an_unlabelled_folder_is_never_a_class_and_its_bad_files_are_counted(tmp_path, layout, where, as_zip):
    root = _with_pool(write_folder(tmp_path / "set", layout), where)
    d = load_dataset(str(zip_folder(root, tmp_path / "set.zip") if as_zip else root))
    assert d.classes == ["a", "b"]
    assert len(d.unlabelled) == 6 and (d.unlabelled.labels == UNKNOWN).all()
    assert d.unlabelled.images.shape[1:] == d.train.images.shape[1:]
    assert sum(len(s) for s in d.splits.values()) == sum(layout.values())  # none of the pool in a split
    assert d.skipped == {"not a readable image": 1, "not images": 1}
    assert d.describe()["unlabelled"] == 6


def test_evaluating_on_a_folder_leaves_its_unlabelled_images_out(tmp_path):
    root = _with_pool(write_folder(tmp_path / "set", {"a": 3, "b": 3}))
    assert len(load_labelled(root, ["a", "b"]).test) == 6


def test_a_pool_alone_is_not_a_class_either(tmp_path):
    root = _with_pool(write_folder(tmp_path / "set", {"a": 3}))
    with pytest.raises(TLCoreError, match="1 class folder"):
        load_dataset(str(root))


def test_hiding_labels_is_seeded_keeps_k_per_class_and_the_rest_as_the_pool(digits):
    a, b, c = (hide_labels(digits, 2, seed) for seed in (0, 0, 1))
    assert a.class_counts() == [2] * 10 and len(a.unlabelled) == len(digits.train) - 20
    assert torch.equal(a.train.images, b.train.images) and not torch.equal(a.train.images, c.train.images)
    # every training image is in exactly one place, and the pool keeps its true labels aside
    assert sorted(torch.cat([a.train.labels, a.unlabelled.labels]).tolist()) == sorted(digits.train.labels.tolist())
    assert len(a.val) == len(digits.val) and len(a.test) == len(digits.test)


def test_loose_images_join_the_pool_at_the_runs_size_and_channels(tmp_path, digits):
    loose = _with_pool(tmp_path / "loose", "photos/day1")  # any layout: folders are not classes here
    pool, skipped = load_unlabelled(zip_folder(loose, tmp_path / "loose.zip"), digits.size, digits.channels)
    assert pool.images.shape == (6, 1, 8, 8) and (pool.labels == UNKNOWN).all()
    assert skipped == {"not a readable image": 1, "not images": 1}
    d = with_pool(digits, None, str(loose), 0)
    assert len(d.unlabelled) == 6 and d.skipped == skipped
    with pytest.raises(TLCoreError, match="No readable images in empty"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "x.txt").write_text("no")
        load_unlabelled(tmp_path / "empty", 8, 1)
    # As the app passes them: paths as strings (a folder with no image in it, fuzzing found).
    with pytest.raises(TLCoreError, match="No readable images in lenet5-mnist"):
        load_unlabelled([str(BUNDLED)], 8, 1)


@pytest.mark.parametrize("kw,says", [
    (dict(unlabelled="rest"), "give labelled_per_class too"),
    (dict(labelled_per_class=2, samples_per_class=2), "not both"),
    (dict(labelled_per_class=2, semi_supervised="label-spreading", weights="none"), "choose weights other than 'none'"),
    (dict(semi_supervised="fixmatch", weights=str(BUNDLED)), "Unknown semi_supervised 'fixmatch'. Valid choices: "
                                                            "'label-spreading', 'self-training'"),
    (dict(labelled_per_class=0), "labelled_per_class must be a whole number > 0"),
])
def test_semi_supervised_settings_that_disagree_are_refused(kw, says):
    with pytest.raises(TLCoreError, match=says):
        RunConfig(**kw).validate()


def test_a_semi_supervised_run_without_unlabelled_images_says_where_they_come_from():
    with pytest.raises(TLCoreError, match="an unlabelled/ folder beside the class folders, images added as unlabelled"):
        train(quick(weights=str(BUNDLED), preset="linear-probe", semi_supervised="label-spreading"))


def _semi_run(data, method, preset="linear-probe"):
    cfg = quick(weights=str(BUNDLED), preset=preset, semi_supervised=method, labelled_per_class=5, epochs=3)
    return train(cfg, data=data)


@pytest.mark.parametrize("method,preset", [("label-spreading", "linear-probe"), ("self-training", "linear-probe"),
                                           ("label-spreading", "full")])
def test_a_runs_hidden_labels_never_reach_its_training(digits, method, preset):
    """The same labelled images, the pool's hidden labels scrambled: the same weights to the bit;
    only the score of the pseudo-labels, read after, changes. With a trainable body ("full") too:
    pseudo-label fine-tuning, augmented."""
    data = hide_labels(digits, 5, 0)
    truth = data.unlabelled.labels
    scrambled = (truth + torch.randint(1, 10, truth.shape, generator=torch.Generator().manual_seed(1))) % 10
    poisoned = dataclasses.replace(data, unlabelled=dataclasses.replace(data.unlabelled, labels=scrambled))
    clean, dirty = _semi_run(data, method, preset), _semi_run(poisoned, method, preset)
    for a, b in zip(clean.model.state_dict().values(), dirty.model.state_dict().values()):
        assert torch.equal(a, b)
    assert clean.pseudo_labels["used"] == dirty.pseudo_labels["used"] > 0
    assert clean.pseudo_labels["accuracy"] > 0.8 and dirty.pseudo_labels["accuracy"] < 0.2
    assert clean.summary()["unlabelled_pool"] == len(digits.train) - 50


def test_pseudo_labels_of_images_nobody_labelled_are_not_scored(tmp_path, digits):
    rng = np.random.default_rng(0)
    loose = tmp_path / "loose"
    loose.mkdir()
    for j in range(12):  # digits' own test images, their labels thrown away
        (loose / f"{j}.png").write_bytes(png_bytes(digits.test.images[j, 0].numpy()))
    (loose / "noise.png").write_bytes(png_bytes(rng.integers(0, 255, (8, 8), dtype=np.uint8)))
    data = with_pool(digits, None, str(loose), 0)
    r = train(quick(weights=str(BUNDLED), preset="linear-probe", semi_supervised="label-spreading", epochs=1), data=data)
    assert r.pseudo_labels["pool"] == 13 and r.pseudo_labels["accuracy"] is None
    assert any("how many are right is not measured" in n for n in r.notes)


def test_unused_unlabelled_images_are_named_in_the_runs_notes(digits):
    r = train(quick(weights=str(BUNDLED), preset="linear-probe", labelled_per_class=3, epochs=1))
    assert r.pseudo_labels is None and "unlabelled_used" not in r.summary()
    assert any(f"{len(digits.train) - 30:,} unlabelled images are not used" in n for n in r.notes)


def test_the_train_command_learns_from_the_unlabelled_images_and_says_so(cli, tmp_path):
    r = cli("train", "--dataset", "digits", "--weights", str(BUNDLED), "--preset", "linear-probe",
            "--labelled-per-class", "1", "--unlabelled", "rest", "--semi-supervised", "label-spreading",
            "--out", str(tmp_path / "run"), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["semi_supervised"] == "label-spreading" and s["unlabelled_used"] > 0
    assert 0.8 < s["pseudo_label_accuracy"] <= 1 and s["unlabelled_pool"] == 1285
    assert any(n.startswith("Semi-supervised (label-spreading)") for n in s["notes"])
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["summary"]
    assert saved["unlabelled_used"] == s["unlabelled_used"]
    from tlcore.training.result import saved_result
    assert saved_result(tmp_path / "run").pseudo_labels["used"] == s["unlabelled_used"]
