"""Batches straight from device-resident uint8 tensors, augmented as whole batches.

The airbench recipe: the split lives on the device once; an epoch is a ``randperm``; each
batch is a slice, turned to float, augmented and normalized by batched tensor ops. No
per-sample PIL, no worker processes: on a 2-core laptop this is what makes LeNet-5 fast.

Augmentation is one random affine per image (shift, rotation, zoom and, where labels allow,
a horizontal flip) applied with a single ``grid_sample`` that also resizes to the model's
input size, so augmenting costs about what resizing alone would.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..preprocess import InputSpec, adapt_channels, normalize, prepare
from .base import Split
from .stream import prefetched, streamed


@dataclass(frozen=True)
class Augment:
    """Random affine augmentation ranges. Zero everywhere means none."""

    translate: float = 0.1  # max shift, as a fraction of the image side
    rotate: float = 10.0  # max rotation, degrees
    scale: tuple[float, float] = (0.9, 1.1)  # zoom range
    hflip: bool = False  # mirror half the images (only where the label survives it)
    padding: str = "zeros"  # what enters at the borders: "zeros" for ink on black, "reflection" for photos

    @classmethod
    def for_data(cls, hflip: bool) -> "Augment":
        """Digits: shifts and small rotations, never flips. Photos: flips, reflected borders."""
        if hflip:
            return cls(translate=0.1, rotate=0.0, scale=(0.9, 1.1), hflip=True, padding="reflection")
        return cls()


def random_affine(x: torch.Tensor, aug: Augment, size: int, r: torch.Tensor) -> torch.Tensor:
    """Apply an independent random affine to every image of float NCHW ``x``, output ``size``.

    ``r`` holds five uniform numbers per image, on ``x``'s device (drawn per epoch by the loader).
    """
    n = x.shape[0]
    angle = (r[:, 0] * 2 - 1) * (aug.rotate * math.pi / 180)
    scale = r[:, 1] * (aug.scale[1] - aug.scale[0]) + aug.scale[0]
    tx, ty = (r[:, 2:4] * 2 - 1).mul_(2 * aug.translate).unbind(1)
    flip = torch.where(r[:, 4] < 0.5, -1.0, 1.0) if aug.hflip else torch.ones_like(scale)
    # affine_grid maps output coords to input coords: zooming in means sampling a smaller area.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([cos * flip, -sin, tx, sin * flip, cos, ty], 1).view(n, 2, 3).to(x.dtype)
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=aug.padding, align_corners=False)


class BatchLoader:
    """Iterate (inputs, labels) over a :class:`Split` in the model's input format.

    Args:
        split: uint8 images and labels; moved to ``device`` once here.
        spec: the model's input spec (channels, size, normalization).
        batch_size: images per batch.
        shuffle: new random order every epoch (seeded).
        augment: random affine per image, or None for plain resizing.
        drop_last: skip a final partial batch (keeps BatchNorm statistics sane in training).
        channels_last: memory format convolutions prefer on CUDA.
    """

    def __init__(self, split: Split, spec: InputSpec, *, batch_size: int = 128, shuffle: bool = False,
                 augment: Augment | None = None, drop_last: bool = False, device: str | torch.device = "cpu",
                 seed: int = 0, channels_last: bool = False):
        self.device = torch.device(device)
        self.images = split.images.to(self.device, non_blocking=True)
        self.labels = split.labels.to(self.device, non_blocking=True)
        self.spec, self.batch_size, self.shuffle = spec, batch_size, shuffle
        self.augment, self.drop_last, self.channels_last = augment, drop_last, channels_last
        self.generator = torch.Generator().manual_seed(seed)

    # Distributed training (tlcore.distributed): this process takes every world-th image of each
    # epoch's order, from its rank on. The order is drawn alike on every rank (same seed).
    rank, world = 0, 1
    # A balanced sampler (tlcore.training.balance): each image's chance of being drawn; None: a permutation.
    weights: torch.Tensor | None = None
    last_order: torch.Tensor | None = None  # the indices of the images of the last epoch begun, this rank's

    def shard(self, rank: int, world: int) -> "BatchLoader":
        """This rank's share of every batch: ``batch_size`` is the global batch, split over the
        ``world`` ranks (rounded, at least 1 each), so N processes take the steps one would."""
        self.rank, self.world = rank, world
        self.batch_size = max(1, round(self.batch_size / world))
        return self

    def __len__(self) -> int:
        n, bs = len(self.labels), self.batch_size
        if self.world == 1:
            return n // bs if self.drop_last else math.ceil(n / bs)
        # Every rank takes the same number of steps (DDP averages gradients at each): shards differ
        # by one image at most, so count by the smaller for full batches, by the larger otherwise.
        return (n // self.world) // bs if self.drop_last else math.ceil(math.ceil(n / self.world) / bs)

    def _slices(self, count: int) -> list:
        """Positions of each batch in this rank's part of the order."""
        bs, steps = self.batch_size, len(self)
        if self.world == 1 or self.drop_last:
            return [slice(i * bs, (i + 1) * bs) for i in range(steps)]
        # The same number of batches on every rank, each at most ``bs``: a shard one image short
        # would otherwise end a batch early and leave the ranks' steps unpaired.
        bounds = [round(i * count / steps) for i in range(steps + 1)]
        return [slice(a, b) for a, b in zip(bounds, bounds[1:])]

    def state_dict(self) -> dict:
        """The random stream (order and augmentation): what the next epoch will draw."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def example(self) -> torch.Tensor:
        """One input as the model takes it, unaugmented (no random draw: the stream stays)."""
        return prepare(self.images[:1].to(self.device), self.spec)

    def transform(self, images: torch.Tensor, rand: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 batch on the device -> model input, augmented when this loader augments."""
        if self.augment is None:
            x = prepare(images, self.spec)
        else:
            if rand is None:
                rand = torch.rand(len(images), 5, generator=self.generator).to(images.device)
            x = images.float().div_(255)
            if x.shape[1] > self.spec.channels:
                x = adapt_channels(x, self.spec.channels)
            x = random_affine(x, self.augment, self.spec.size, rand)
            x = normalize(adapt_channels(x, self.spec.channels), self.spec)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __iter__(self):
        n = len(self.labels)
        # Everything random for the epoch is drawn here, once, from the seeded CPU generator and
        # moved to the device in one copy: per-batch draws would be a CUDA sync every step.
        if self.shuffle and self.weights is not None:  # skewed classes: drawn by weight, with replacement
            order = torch.multinomial(self.weights, n, replacement=True, generator=self.generator).to(self.device)
        elif self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        rand = torch.rand(n, 5, generator=self.generator).to(self.device) if self.augment is not None else None
        if self.world > 1:
            order = order[self.rank::self.world]
            rand = rand[self.rank::self.world] if rand is not None else None
        self.last_order = order
        slices = self._slices(len(order))
        for sl, images in zip(slices, self._fetch(order, slices)):
            idx = order[sl]
            yield self.transform(images, None if rand is None else rand[sl]), self.labels[idx]

    def _fetch(self, order: torch.Tensor, slices: list):
        """Each batch's uint8 images on the device: slices of the resident tensor, or, streaming,
        decoded from their files a few batches ahead of the step."""
        if not streamed(self.images):
            return (self.images[order[sl]] for sl in slices)
        order = order.cpu()
        return prefetched(lambda sl: self.images[order[sl]].to(self.device, non_blocking=True), slices)


class TensorLoader(BatchLoader):
    """The same batching and order as :class:`BatchLoader`, over ready tensors (cached features)."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 128, shuffle: bool = False,
                 drop_last: bool = False, device: str | torch.device = "cpu", seed: int = 0):
        self.device = torch.device(device)
        self.images, self.labels = inputs.to(self.device), labels.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)
        self.augment = None

    def example(self) -> torch.Tensor:
        return self.images[:1]

    def transform(self, inputs: torch.Tensor, rand=None) -> torch.Tensor:
        return inputs
