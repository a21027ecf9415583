"""What a run's steps iterate: batches of images, or of a frozen body's cached features.

The choice follows the model and the config. Augmentation is on by default only when the body
learns (a frozen body's features are what they are). With the whole body frozen and no
augmentation, every epoch would push the same images through the same body, so each image's
features are computed once and the head trains on them (Teachable Machine's trade).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import RunConfig
from ..data import Augment, BatchLoader, ImageData
from ..data.loader import TensorLoader
from ..events import StopToken
from .feature_cache import shared_features
from ..models import TransferNet
from ..preprocess import pass_batch


@dataclass
class Batches:
    loader: BatchLoader  # training batches, shuffled (a TensorLoader of features when cached)
    val_loader: BatchLoader
    net: torch.nn.Module  # what a batch goes through: the model, its compiled form, or only its head
    augment: bool  # what "automatic" became
    cached: bool
    batch_size: int


def run_batches(cfg: RunConfig, data: ImageData, model: TransferNet, device: torch.device, amp: torch.dtype | None,
                *, stop: StopToken, progress=None) -> Batches | None:
    """The loaders ``cfg`` asks for on ``model`` (placed on ``device``); None if ``stop`` came
    while features were being cached. ``progress(fraction)`` follows the caching, from 0."""
    augment = (not model.body_frozen) if cfg.augment is None else cfg.augment
    cached = cfg.feature_cache and not augment and model.body_frozen
    bs = min(cfg.batch_size, len(data.train))
    # A final batch of one would upset BatchNorm; a linear head has none, so it sees every image.
    drop_last = len(data.train) > bs and not model.body_frozen
    if cached:
        if progress:
            progress(0.0)
        feats = []
        for split in (data.train, data.val):
            f = shared_features(model, split.images, device, amp=amp, stop=stop,
                                progress=progress)
            if f is None:
                return None
            feats.append(f)
        loader = TensorLoader(feats[0], data.train.labels, batch_size=bs, shuffle=True, drop_last=drop_last,
                              device=device, seed=cfg.seed)
        val_loader = TensorLoader(feats[1], data.val.labels, batch_size=512, device=device)
        return Batches(loader, val_loader, model.head, augment, cached, bs)
    aug = Augment.for_data(data.hflip) if augment else None
    loader = BatchLoader(data.train, model.spec, batch_size=bs, shuffle=True, augment=aug, drop_last=drop_last,
                         device=device, seed=cfg.seed, channels_last=True)
    val_loader = BatchLoader(data.val, model.spec, batch_size=max(bs, pass_batch(model.spec.size)), device=device,
                             channels_last=True)
    net = torch.compile(model) if cfg.compile else model
    return Batches(loader, val_loader, net, augment, cached, bs)
