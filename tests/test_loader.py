"""The device-resident batch iterator: shapes, normalization, and batched augmentation."""
from __future__ import annotations

import pytest
import torch

from tlcore.data import Augment, BatchLoader, Split, load_dataset
from tlcore.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec, prepare

GRAY28 = InputSpec(1, 28, (0.5,), (0.5,))
RGB32 = InputSpec(3, 32, IMAGENET_MEAN, IMAGENET_STD)


def _split(n=10, c=1, s=8) -> Split:
    g = torch.Generator().manual_seed(0)
    return Split(torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=g), torch.arange(n) % 3)


@pytest.mark.parametrize("c,s", [(1, 8), (1, 28), (3, 32), (3, 300)])
@pytest.mark.parametrize("spec", [GRAY28, RGB32])
@pytest.mark.parametrize("augment", [None, Augment(), Augment.for_data(hflip=True)])
def test_batches_match_the_model_spec(c, s, spec, augment):
    loader = BatchLoader(_split(10, c, s), spec, batch_size=4, shuffle=True, augment=augment)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [len(y) for _, y in batches] == [4, 4, 2]
    for x, _ in batches:
        assert x.dtype == torch.float32 and x.shape[1:] == (spec.channels, spec.size, spec.size)
        assert torch.isfinite(x).all()
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == sorted(_split().labels.tolist())


def test_drop_last_and_every_epoch_a_new_order():
    loader = BatchLoader(_split(10), GRAY28, batch_size=4, shuffle=True, drop_last=True, seed=1)
    assert len(loader) == 2
    a = torch.cat([y for _, y in loader]).tolist()
    orders = {tuple(torch.cat([x[:, 0, 0, 0] for x, _ in loader]).tolist()) for _ in range(3)}
    assert len(a) == 8 and len(orders) > 1


def test_without_augmentation_it_is_exactly_prepare():
    split = _split(6, 3, 32)
    x, _ = next(iter(BatchLoader(split, RGB32, batch_size=6)))
    assert torch.equal(x, prepare(split.images, RGB32))
    manual = (split.images.float() / 255 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(x, manual, atol=1e-6)


def test_channels_adapt_both_ways():
    gray = Split(torch.full((2, 1, 4, 4), 255, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64))
    x, _ = next(iter(BatchLoader(gray, InputSpec(3, 4, (0.0,) * 3, (1.0,) * 3))))
    assert x.shape == (2, 3, 4, 4) and torch.allclose(x, torch.ones_like(x))
    red = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    red[:, 0] = 255
    x = prepare(red, InputSpec(1, 4, (0.0,), (1.0,)))
    assert torch.allclose(x, torch.full_like(x, 0.299), atol=1e-6)  # luma, as PIL's convert("L")


def test_augmentation_is_seeded_and_changes_images():
    split = load_dataset("digits").train
    a = next(iter(BatchLoader(split, GRAY28, batch_size=64, augment=Augment(), seed=5)))[0]
    b = next(iter(BatchLoader(split, GRAY28, batch_size=64, augment=Augment(), seed=5)))[0]
    plain = next(iter(BatchLoader(split, GRAY28, batch_size=64)))[0]
    assert torch.equal(a, b) and not torch.allclose(a, plain, atol=1e-3)
    # Same ink, moved: the mean brightness of a shifted/rotated digit stays close.
    assert abs(a.mean().item() - plain.mean().item()) < 0.1


def test_flips_only_when_asked():
    # An image bright on its left half: without hflip it stays bright on the left.
    img = torch.zeros(64, 1, 16, 16, dtype=torch.uint8)
    img[..., :8] = 255
    split = Split(img, torch.zeros(64, dtype=torch.int64))
    spec = InputSpec(1, 16, (0.0,), (1.0,))
    no_flip = Augment(translate=0.0, rotate=0.0, scale=(1.0, 1.0), hflip=False)
    flip = Augment(translate=0.0, rotate=0.0, scale=(1.0, 1.0), hflip=True)
    x = next(iter(BatchLoader(split, spec, batch_size=64, augment=no_flip)))[0]
    assert (x[..., :8].mean((1, 2, 3)) > x[..., 8:].mean((1, 2, 3))).all()
    x = next(iter(BatchLoader(split, spec, batch_size=64, augment=flip, seed=0)))[0]
    flipped = (x[..., 8:].mean((1, 2, 3)) > x[..., :8].mean((1, 2, 3))).float().mean().item()
    assert 0.25 < flipped < 0.75
