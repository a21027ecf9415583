"""A frozen body's features, computed once: the feature cache.

With the whole body frozen and no augmentation, every epoch would push the same images
through the same body. Computing each image's features once lets the head train on an
(N, D) tensor in milliseconds (Teachable Machine's trade).
"""
from __future__ import annotations

import torch

from .. import distributed
from ..data.stream import chunks
from ..device import autocast
from ..events import StopToken
from ..models import TransferNet
from ..models.fold import for_pass
from ..preprocess import pass_batch, prepare


def shared_features(model: TransferNet, images: torch.Tensor, device: torch.device, **kw) -> torch.Tensor | None:
    """:func:`compute_features`, each rank of a distributed run computing its share; all get all."""
    return distributed.split_rows(lambda x: compute_features(model, x, device, **kw), images)


@torch.no_grad()
def compute_features(model: TransferNet, images: torch.Tensor, device: torch.device, *, batch_size: int | None = None,
                     amp: torch.dtype | None, stop: StopToken, progress=None) -> torch.Tensor | None:
    """Body features of every image (float32, on ``device``); None if a stop was requested.
    ``batch_size``: default :func:`pass_batch` at the model's input side."""
    model.eval()
    batch_size = batch_size or pass_batch(model.spec.size)
    body = for_pass(model.body, model.spec, len(images))  # BatchNorms folded for a split (tlcore.models.fold)
    out = []
    for i, batch in zip(range(0, len(images), batch_size), chunks(images, batch_size)):
        if stop.requested:
            return None
        batch = batch.to(device, non_blocking=True)
        n = len(batch)
        if n < batch_size and i > 0:  # one batch shape throughout: cuDNN plans each new shape anew
            batch = torch.cat([batch, batch[:1].expand(batch_size - n, -1, -1, -1)])
        x = prepare(batch, model.spec).contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            out.append(body(x).flatten(1).float()[:n])
        if progress:
            progress(min(1.0, (i + batch_size) / len(images)))
    return torch.cat(out) if out else torch.zeros(0, model.num_features, device=device)

