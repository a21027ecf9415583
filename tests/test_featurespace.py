"""The feature space before and after: k-NN separability, projections, and the CLI's ``features``.

The fine-tuned run is the one the issue names: digits from the bundled MNIST LeNet-5, all of it
fine-tuned a few epochs with the settings the app suggests for it.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from tlcore.config import RunConfig
from tlcore.training.suggest import suggested_for
from tlcore.insight.feature_space import feature_space, knn_accuracy, project, starting_body
from tlcore.errors import TLCoreError
from tlcore.training.train import train

from conftest import BUNDLED


def _run(data, folder, preset: str, epochs: int):
    cfg = RunConfig(dataset="digits", weights=str(BUNDLED), preset=preset, epochs=epochs)
    suggestion = {k: v for k, v in suggested_for(cfg, len(data.train)).items() if k != "epochs"}
    return train(dataclasses.replace(cfg, **suggestion).validate(), data=data, out=folder)


@pytest.fixture(scope="module")
def finetuned(digits, tmp_path_factory):
    return _run(digits, tmp_path_factory.mktemp("runs") / "digits-full", "full", 3)


def test_knn_accuracy_tells_separated_classes_from_mixed_ones():
    x, y = make_blobs(300, n_features=8, centers=3, cluster_std=0.5, random_state=0)
    assert knn_accuracy(x, y) > 0.95
    shuffled = np.random.default_rng(0).permutation(y)
    assert knn_accuracy(x, shuffled) < 0.6  # the same points, labels that ignore them
    assert np.isnan(knn_accuracy(x[:3], y[:3]))  # one image a class: nothing to cross-validate


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projections_are_2d_seeded_and_capped(method):
    cap = 200  # MAX_POINTS's rule, on fewer points: t-SNE of 1000 takes seconds
    x, _ = make_blobs(cap + 100, n_features=6, centers=4, random_state=1)
    idx, xy = project(x, method, max_points=cap)
    assert xy.shape == (cap, 2) and len(idx) == cap and np.all(np.diff(idx) > 0)
    again_idx, again = project(x, method, max_points=cap)
    assert np.array_equal(idx, again_idx) and np.allclose(xy, again)
    small_idx, small = project(x[:50], method)
    assert small.shape == (50, 2) and np.array_equal(small_idx, np.arange(50))


def test_an_unknown_projection_names_the_valid_ones():
    with pytest.raises(TLCoreError, match="'pca', 'tsne'"):
        project(np.zeros((10, 3)), "umap")


def test_fine_tuning_from_mnist_makes_the_digits_more_separable(finetuned, digits):
    space = feature_space(finetuned.model, finetuned.config.weights, digits.test.images, digits.test.labels)
    assert space.before is not None and "lenet5-mnist" in space.before.title
    assert space.before.features.shape == space.after.features.shape == (len(digits.test), 84)
    assert space.before.knn_accuracy < space.after.knn_accuracy


def test_a_linear_probe_keeps_the_source_features(digits, tmp_path):
    probe = _run(digits, tmp_path / "probe", "linear-probe", 1)
    space = feature_space(probe.model, probe.config.weights, digits.test.images, digits.test.labels)
    assert np.array_equal(space.before.features, space.after.features)
    assert space.before.knn_accuracy == space.after.knn_accuracy


def test_a_run_from_scratch_has_no_before(finetuned):
    source, why = starting_body("none", finetuned.model)
    assert source is None and "from scratch" in why


def test_cli_features_prints_before_and_after_and_writes_the_chart(finetuned, tmp_path, cli):
    plot = tmp_path / "space.html"
    r = cli("features", "--checkpoint", str(finetuned.checkpoint), "--plot", str(plot), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["before"]["knn_accuracy"] < d["after"]["knn_accuracy"] <= 1
    assert plot.stat().st_size > 10_000 and "5-NN accuracy" in plot.read_text()

