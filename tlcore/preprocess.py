"""What a model expects as input, and the one function that turns uint8 images into it.

Datasets keep images as they are (uint8, native size, 1 or 3 channels); every model states an
:class:`InputSpec`. :func:`prepare` bridges the two on whatever device the batch is on, for
training, evaluation, prediction and the sketchpad alike, so they can never disagree.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ITU-R 601 luma, the weights PIL's convert("L") uses, so RGB->gray matches our decoder.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class InputSpec:
    """Channels, square size and per-channel normalization a network was built or trained for."""

    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        assert self.channels in (1, 3), self.channels
        assert len(self.mean) == len(self.std) == self.channels, (self.mean, self.std)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        return cls(int(d["channels"]), int(d["size"]), tuple(d["mean"]), tuple(d["std"]))


def adapt_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Float NCHW with 1 or 3 channels -> ``channels`` (gray is repeated; colour is luma)."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    raise ValueError(f"cannot adapt {c} channels to {channels}")


@functools.lru_cache(maxsize=32)
def _stats(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # Built once per device: a tensor made from Python floats every batch is a host-to-device
    # copy, and on CUDA a sync point.
    return torch.tensor(values, device=device, dtype=dtype).view(1, -1, 1, 1)


def normalize(x: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """(x - mean) / std per channel. One channel: in place (``x`` is a fresh tensor from
    :func:`prepare`); three: out of place, since gray expanded to RGB shares its memory."""
    if spec.channels == 1:
        return x.sub_(spec.mean[0]).div_(spec.std[0])
    return (x - _stats(spec.mean, x.device, x.dtype)) / _stats(spec.std, x.device, x.dtype)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square resize of float NCHW; antialiased when shrinking so photos don't alias."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    shrink = x.shape[-1] > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def prepare(images: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 NCHW (any size, 1 or 3 channels) -> normalized float NCHW matching ``spec``."""
    x = images.float().div_(255)
    if x.shape[1] > spec.channels:  # shrink channels before resizing: less work
        x = adapt_channels(x, spec.channels)
    x = resize(x, spec.size)
    x = adapt_channels(x, spec.channels)
    return normalize(x, spec)


PASS_PIXELS = 32 * 224 * 224  # a forward-only batch, in pixels: 32 images at 224 px, 98 at 128


def pass_batch(side: int, most: int = 256) -> int:
    """Images per batch of a forward-only pass (features, predictions) at ``side`` px: what holds
    PASS_PIXELS, at most ``most``. Such a pass needs no bigger batch to reach the body's rate on a
    CPU, and a bigger one costs memory with photos. Measured (EfficientNet-Lite0, 2-core VM): at
    224 px 16 images a batch ran at 82 images/s, 64 at 78; at 128 px 98 a batch at 225 images/s
    and 1.0 GB above the data, 196 at 256 images/s and 1.9 GB."""
    return max(8, min(most, PASS_PIXELS // (side * side)))
