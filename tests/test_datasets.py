"""The dataset registry: every source loads into the same form, splits are seeded and stratified."""
from __future__ import annotations

import pytest
import torch

from tlcore.data import list_datasets, load_dataset
from tlcore.data.base import few_shot, stratified_split
from tlcore.errors import DataNotFoundError, TLCoreError

TORCHVISION_SETS = [n for n in list_datasets() if n != "digits"]


def test_registry_lists_every_set_in_the_issue():
    assert list_datasets() == ["digits", "mnist", "fashion-mnist", "kmnist", "emnist-letters", "usps", "svhn",
                               "cifar10", "cifar100", "mnist-inverted", "mnist-small", "mnist-m"]


def test_digits_offline_default():
    d = load_dataset("digits")
    desc = d.describe()
    assert desc["classes"] == [str(i) for i in range(10)]
    assert (desc["channels"], desc["size"]) == (1, 8)
    assert sum(desc["splits"].values()) == 1797
    for s in d.splits.values():
        assert s.images.dtype == torch.uint8 and s.images.shape[1:] == (1, 8, 8)
        assert s.labels.min() >= 0 and s.labels.max() <= 9
    # scaled 0..16 -> 0..255 so a full-ink pixel is white, as in MNIST
    assert d.train.images.max() == 255


def test_splits_are_deterministic_under_a_seed_and_differ_across_seeds():
    a, b, c = load_dataset("digits", seed=3), load_dataset("digits", seed=3), load_dataset("digits", seed=4)
    for s in ("train", "val", "test"):
        assert torch.equal(a.splits[s].images, b.splits[s].images)
        assert torch.equal(a.splits[s].labels, b.splits[s].labels)
    assert not torch.equal(a.test.images, c.test.images)


def test_splits_cover_everything_and_are_stratified():
    d = load_dataset("digits", seed=1)
    flat = torch.cat([s.images.flatten(1) for s in d.splits.values()])
    assert len(flat) == 1797
    # digits contains a few exact duplicate images; disjointness is by count, then by stratification
    counts = [d.class_counts(s) for s in ("train", "val", "test")]
    for cls in range(10):
        total = sum(c[cls] for c in counts)
        assert abs(counts[2][cls] - 0.2 * total) <= 1  # test is 20% of every class


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.3])
def test_stratified_split_takes_the_fraction_of_every_class(fraction):
    labels = torch.arange(5).repeat_interleave(torch.tensor([10, 20, 30, 2, 1]))
    keep, take = stratified_split(labels, fraction, seed=0)
    assert len(set(keep.tolist()) & set(take.tolist())) == 0 and len(keep) + len(take) == len(labels)
    per = torch.bincount(labels[take], minlength=5).tolist()
    assert per[:3] == [max(1, round(n * fraction)) for n in (10, 20, 30)]
    assert per[3] == 1 and per[4] == 0  # a class of two gives one; a class of one keeps it


def test_few_shot_keeps_k_per_class_and_validation_untouched():
    full, few = load_dataset("digits"), load_dataset("digits", samples_per_class=5)
    assert few.class_counts("train") == [5] * 10
    assert torch.equal(full.val.labels, few.val.labels) and torch.equal(full.test.labels, few.test.labels)
    idx = few_shot(torch.tensor([0, 0, 0, 1]), 2, seed=0)
    assert sorted(torch.tensor([0, 0, 0, 1])[idx].tolist()) == [0, 0, 1]


@pytest.mark.parametrize("kw,match", [
    ({"val_fraction": 0.0}, "val_fraction"), ({"val_fraction": 1.5}, "val_fraction"),
    ({"samples_per_class": 0}, "samples_per_class"), ({"samples_per_class": 2.5}, "samples_per_class"),
])
def test_bad_options_name_the_argument(kw, match):
    with pytest.raises(TLCoreError, match=match):
        load_dataset("digits", **kw)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(TLCoreError, match="Unknown dataset 'mnistt'.*digits, mnist"):
        load_dataset("mnistt")


@pytest.mark.parametrize("name", TORCHVISION_SETS)
def test_missing_offline_names_the_folder_and_files(name, tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        load_dataset(name, data_dir=tmp_path / "empty", download=False)
    msg = str(e.value)
    assert repr(name) in msg and str(tmp_path / "empty") in msg and "TLCORE_DATA_DIR" in msg


def test_mnist_from_the_shared_folder(shared_data):
    d = load_dataset("mnist", data_dir=shared_data)
    assert d.describe() == {"name": "mnist", "classes": [str(i) for i in range(10)], "channels": 1, "size": 28,
                            "splits": {"train": 54001, "val": 5999, "test": 10000}}
    assert d.train.images.dtype == torch.uint8 and d.train.images.shape[1:] == (1, 28, 28)
    assert d.hflip is False  # mirrored digits are not digits


def test_cifar10_mini_zip(cifar_zip):
    d = load_dataset(str(cifar_zip))
    desc = d.describe()
    assert desc["name"] == "cifar10-mini"
    assert desc["classes"] == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert (desc["channels"], desc["size"]) == (3, 32)  # auto size: the images' own 32x32
    assert desc["splits"] == {"train": 9000, "val": 1000, "test": 2000}
    assert d.class_counts("test") == [200] * 10 and d.class_counts("val") == [100] * 10
    assert d.hflip is True and "skipped" not in desc
