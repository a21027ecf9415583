"""Grad-CAM: the map's size and range, and the sanity checks of Adebayo et al. (2018).

An EfficientNet-Lite0 linear probe (ImageNet body, frozen; cached features) on a small subset
of cifar10-mini at 112 px. Randomising the body must change the maps (Spearman rank correlation
of the signed maps, averaged over 20 test images, below 0.5), and maps for two classes differ.
The signed maps are ranked because a clipped map with no positive position is blank, and a
blank map has no ranks (the randomised body's clipped maps are compared apart).
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.data.base import few_shot
from tlcore.training.suggest import suggested_for
from tlcore.errors import TLCoreError
from tlcore.events import Recorder
from tlcore.insight.gradcam import gradcam, heat_overlay, is_convolutional
from tlcore.models import create_backbone
from tlcore.preprocess import prepare
from tlcore.insight.saliency import EXPLANATIONS
from tlcore.training.train import train

SIZE = 112


_TRAINED: dict = {}  # the probe, trained once for this file (cifar_zip is per test: it skips without the data)


@pytest.fixture
def probe(cifar_zip):
    """(model, 20 test images: 2 per class)."""
    if "probe" not in _TRAINED:
        _TRAINED["probe"] = _train_probe(cifar_zip)
    return _TRAINED["probe"]


def _train_probe(cifar_zip):
    data = load_dataset(str(cifar_zip), samples_per_class=20, image_size=SIZE, seed=0)
    data = dataclasses.replace(data, val=data.val.subset(few_shot(data.val.labels, 2, seed=0)),
                               test=data.test.subset(few_shot(data.test.labels, 2, seed=0)))
    cfg = RunConfig(dataset=str(cifar_zip), backbone="efficientnet_lite0", weights="imagenet", preset="linear-probe",
                    image_size=SIZE)
    cfg = dataclasses.replace(cfg, **{**suggested_for(cfg, len(data.train)), "epochs": 5}).validate()
    result = train(cfg, data=data, callbacks=[rec := Recorder()])
    info = next(p for kind, p in rec.events if kind == "run_start")
    assert info.feature_cache and result.test.accuracy > 0.3  # the probe ran on cached features; it learned something to explain
    return result.model, data.test.images


def _rank_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([spearmanr(x.ravel(), y.ravel())[0] for x, y in zip(a, b)])


def test_the_map_has_the_inputs_size_and_values_in_0_1(probe):
    model, images = probe
    maps = gradcam(model, images)
    assert maps.shape == (len(images), SIZE, SIZE) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    assert np.allclose(maps.reshape(len(maps), -1).max(1), 1)  # the predicted class has evidence somewhere
    shown = heat_overlay(images, maps)
    assert shown.shape == (len(images), 3, SIZE, SIZE) and shown.dtype == torch.uint8


def test_randomising_the_body_changes_the_map(probe):
    model, images = probe
    shuffled = copy.deepcopy(model)
    torch.manual_seed(0)
    fresh = create_backbone("efficientnet_lite0", weights="none", num_classes=model.num_classes, image_size=SIZE)
    shuffled.body.load_state_dict(fresh.body.state_dict())
    rho = _rank_correlations(gradcam(model, images, raw=True), gradcam(shuffled, images, raw=True))
    print(f"Spearman, trained vs randomised body, 20 images: mean {rho.mean():.3f}, each {np.round(rho, 2)}")
    assert rho.mean() < 0.5
    clipped, random_clipped = gradcam(model, images), gradcam(shuffled, images)
    assert np.abs(clipped - random_clipped).mean() > 0.1


def test_maps_for_two_classes_differ(probe):
    model, images = probe
    with torch.no_grad():
        top2 = model(prepare(images, model.spec)).topk(2, 1).indices
    first, second = gradcam(model, images, top2[:, 0], raw=True), gradcam(model, images, top2[:, 1], raw=True)
    rho = _rank_correlations(first, second)
    print(f"Spearman, first vs second class, 20 images: mean {rho.mean():.3f}, each {np.round(rho, 2)}")
    assert rho.mean() < 0.5
    assert all(not np.allclose(a, b) for a, b in zip(first, second))


def test_lenet_on_digits_has_a_map_at_the_digits_size():
    from conftest import BUNDLED
    from tlcore.runs.checkpoints import load_run

    model, _ = load_run(BUNDLED)
    digits = load_dataset("digits").test.images[:4]
    maps = gradcam(model, digits)
    assert is_convolutional(model) and maps.shape == (4, 8, 8) and 0 <= maps.min() <= maps.max() <= 1


def test_a_body_of_tokens_says_grad_cam_does_not_apply():
    vit = create_backbone("timm:vit_tiny_patch16_224", weights="none", num_classes=2)
    assert not is_convolutional(vit)
    with pytest.raises(TLCoreError, match="needs a convolutional body"):
        gradcam(vit, torch.zeros(1, 3, 224, 224, dtype=torch.uint8))


def test_each_view_names_its_method():
    assert {"smoothgrad", "grad-cam"} <= set(EXPLANATIONS.names())
    assert EXPLANATIONS.get("grad-cam").__doc__.startswith("Grad-CAM:")
    assert EXPLANATIONS.get("smoothgrad").__doc__.startswith("SmoothGrad:")
