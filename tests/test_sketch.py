"""Drawings -> MNIST-style input: every polarity, transparency, size and position; blank canvases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from conftest import BUNDLED, digit_canvas
from tlcore.runs.checkpoints import load_run
from tlcore.insight.predict import predict_probs
from tlcore.data.sketch import EmptySketch, ink_map, sketch_batch, to_mnist


@pytest.fixture(scope="module")
def model():
    return load_run(BUNDLED)[0]


def rgba_layer(img_l: Image.Image) -> np.ndarray:
    """Strokes on a transparent layer, as the sketchpad's layers are: ink in alpha."""
    a = 255 - np.asarray(img_l)
    return np.dstack([np.zeros_like(a)] * 3 + [a]).astype(np.uint8)


@pytest.mark.parametrize("digit", ["1", "7", "0", "4"])
@pytest.mark.parametrize("kind", ["dark-on-light", "light-on-dark", "transparent-layer", "rgb-colour", "sketchpad-dict"])
def test_every_polarity_reads_the_same_digit(model, digit, kind):
    base = digit_canvas(digit)
    if kind == "dark-on-light":
        x = np.asarray(base)
    elif kind == "light-on-dark":
        x = 255 - np.asarray(base)
    elif kind == "transparent-layer":
        x = rgba_layer(base)
    elif kind == "rgb-colour":
        x = np.asarray(Image.merge("RGB", [base, base.point(lambda v: min(255, v + 40)), base]))
    else:
        x = {"background": None, "layers": [rgba_layer(base)], "composite": rgba_layer(base)}
    m = to_mnist(x)
    assert m.shape == (28, 28) and m.dtype == np.uint8
    assert m[0].max() == 0 and m[:, 0].max() == 0  # a black border, as in MNIST
    ys, xs = np.nonzero(m > 30)
    assert ys.max() - ys.min() <= 20 and xs.max() - xs.min() <= 20  # fitted into the 20x20 box
    probs = predict_probs(model, sketch_batch([x], model.spec))[0]
    assert model.classes[int(probs.argmax())] == digit


@pytest.mark.parametrize("box", [(5, 5, 25, 40), (150, 150, 170, 185), (360, 330, 395, 395), (0, 0, 400, 400)])
def test_tiny_huge_and_off_centre_drawings_are_centred(box):
    m = to_mnist(digit_canvas("7", box=box, width=max(3, (box[2] - box[0]) // 8)))
    total = m.astype(float).sum()
    cy, cx = (np.indices(m.shape) * m).reshape(2, -1).sum(1) / total
    assert abs(cy - 14) < 1.5 and abs(cx - 14) < 1.5  # centre of mass in the middle, like MNIST


@pytest.mark.parametrize("blank", [
    None, {"background": None, "layers": [], "composite": None},
    np.full((300, 300), 255, np.uint8), np.zeros((300, 300, 4), np.uint8), np.full((50, 50, 3), 17, np.uint8),
])
def test_blank_canvases_say_draw_a_digit(blank):
    with pytest.raises(EmptySketch, match="Draw a digit"):
        to_mnist(blank)


def test_ink_is_found_whatever_the_background():
    img = np.full((100, 100), 200, np.uint8)
    img[40:60, 45:55] = 30
    ink = ink_map(img)
    assert ink[50, 50] == 170 and ink[5, 5] == 0


def test_typed_digits_mostly_read(model):
    font = ImageFont.load_default(size=200)
    right = 0
    for d in "0123456789":
        img = Image.new("L", (300, 300), 255)
        ImageDraw.Draw(img).text((80, 20), d, fill=0, font=font)
        probs = predict_probs(model, sketch_batch([np.asarray(img)], model.spec))[0]
        right += model.classes[int(probs.argmax())] == d
    assert right >= 7, f"{right}/10 typed digits"


def test_sketch_batches_fit_three_channel_models():
    from tlcore.models import create_backbone

    net = create_backbone("resnet18", num_classes=10, image_size=32)
    x = sketch_batch([np.asarray(digit_canvas("1"))], net.spec)
    assert x.shape == (1, 3, 28, 28) and x.dtype == torch.uint8


def test_saliency_lights_up_the_ink(model):
    from tlcore.insight.saliency import overlay, saliency

    x = sketch_batch([np.asarray(digit_canvas("1"))], model.spec)
    heat = saliency(model, x)[0]
    assert heat.shape == (28, 28) and heat.max() == pytest.approx(1.0) and heat.min() >= 0
    ink = x[0, 0].numpy() > 60
    near = np.zeros_like(ink)
    ys, xs = np.nonzero(ink)
    near[max(0, ys.min() - 3):ys.max() + 4, max(0, xs.min() - 3):xs.max() + 4] = True
    assert heat[near].mean() > 1.3 * heat[~near].mean()  # brighter on and around the stroke than elsewhere
    assert overlay(x[0, 0].numpy(), heat).shape == (224, 224, 3)
