"""A frozen body's features, computed once: the feature cache.

With the whole body frozen and no augmentation, every epoch would push the same images
through the same body. Computing each image's features once lets the head train on an
(N, D) tensor in milliseconds (Teachable Machine's trade).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .. import distributed
from ..data.stream import chunks
from ..device import autocast
from ..events import StopToken
from ..models import TransferNet
from ..preprocess import pass_batch, prepare


def shared_features(model: TransferNet, images: torch.Tensor, device: torch.device, **kw) -> torch.Tensor | None:
    """:func:`compute_features`, each rank of a distributed run computing its share; all get all."""
    return distributed.split_rows(lambda x: compute_features(model, x, device, **kw), images)


FOLD_FROM = 64  # images in a pass from which the body runs with its BatchNorms folded (folded_body)


@torch.no_grad()
def compute_features(model: TransferNet, images: torch.Tensor, device: torch.device, *, batch_size: int | None = None,
                     amp: torch.dtype | None, stop: StopToken, progress=None) -> torch.Tensor | None:
    """Body features of every image (float32, on ``device``); None if a stop was requested.
    ``batch_size``: default :func:`pass_batch` at the model's input side."""
    model.eval()
    batch_size = batch_size or pass_batch(model.spec.size)
    # Folding costs a copy of the body and a check on four images' passes: worth it for a pass over
    # a split, not for the one frame a live camera prediction sends (tlcore.studies.capture).
    body = folded_body(model) if len(images) >= FOLD_FROM else model.body
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


def folded_body(model: TransferNet) -> nn.Module:
    """A copy of the body for forward passes, each BatchNorm folded into the convolution before it:
    in eval mode a BatchNorm is a fixed scale and shift per channel, which the convolution's weights
    and bias can carry, so the pass skips a read and a write of every activation (EfficientNet-Lite0:
    49 folds, the pass ~20% faster on a 2-core CPU at 128 and 224 px; features equal to ~1e-5).
    Pairs are found as a module's consecutive children (timm's and torchvision's layout); the copy is
    checked against the body on two images and, if it differs, the body itself is used."""
    folded, n = copy.deepcopy(model.body).eval(), 0
    for parent in list(folded.modules()):
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None:
                parent._modules[a] = fuse_conv_bn_eval(conv, bn)
                # timm's BatchNormAct2d: its dropout and activation stay where it was
                after = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
                parent._modules[b] = nn.Sequential(*after) if after else nn.Identity()
                n += 1
    if not n:
        return model.body
    p = next(model.body.parameters())
    x = torch.randn(2, model.spec.channels, model.spec.size, model.spec.size, generator=torch.Generator().manual_seed(0))
    x = x.to(p.device, p.dtype)
    want, got = model.body(x).flatten(1), folded(x).flatten(1)
    return folded if torch.allclose(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max())) else model.body
