"""A split as an ordinary PyTorch ``Dataset``, for code written against ``DataLoader`` (the tutorial's).

Images come out as torchvision's ``Resize`` + ``ToTensor`` + ``Normalize`` would give them:
float (C, size, size), normalized per channel; labels as ints.
"""
from __future__ import annotations

import torch

from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec, prepare
from .base import Split


class SplitDataset(torch.utils.data.Dataset):
    """``dataset[i] -> (image, label)`` over a :class:`Split`, resized and normalized.

    Args:
        size: square side of the images given out (a VGG or ResNet wants 224; any works).
        channels: 3 (gray repeated) or 1 (colour turned to luma).
        mean, std: per channel; ImageNet's by default, as pretrained torchvision models expect.
    """

    def __init__(self, split: Split, *, size: int = 224, channels: int = 3, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.split = split
        self.spec = InputSpec(channels, size, tuple(mean)[:channels], tuple(std)[:channels])

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return prepare(self.split.images[i:i + 1], self.spec)[0], int(self.split.labels[i])
