"""Sensible starting hyperparameters for a backbone, its weights and the data size.

What a practitioner would pick first (fastai's and Teachable Machine's habits): a frozen body
trains only a head, on cached features, so many cheap epochs; a pretrained body being
fine-tuned learns ten times slower than its new head; a small network from scratch on small
data takes small batches.
"""
from __future__ import annotations

from .models import HEAD

SMALL = 5_000  # training images below which an epoch is short


def suggested(backbone: str, weights: str, frozen: list[str], group_names: list[str], n_train: int) -> dict:
    """RunConfig overrides: epochs, batch_size, lr, optimizer, scheduler, body_lr_mult."""
    body = [g for g in group_names if g != HEAD]
    all_frozen = bool(body) and set(body) <= set(frozen)
    pretrained = weights != "none"
    small = n_train < SMALL
    if all_frozen:
        return dict(epochs=20 if n_train <= 20_000 else 5, batch_size=64, lr=0.1, optimizer="sgd",
                    scheduler="onecycle", body_lr_mult=1.0)
    if pretrained:
        return dict(epochs=10 if small else 5, batch_size=32 if small else 64, lr=0.01, optimizer="sgd",
                    scheduler="onecycle", body_lr_mult=0.1)
    if backbone == "lenet5":
        return dict(epochs=10 if small else 3, batch_size=32 if small else 128, lr=0.1, optimizer="sgd",
                    scheduler="onecycle", body_lr_mult=1.0)
    return dict(epochs=15 if small else 8, batch_size=64, lr=0.05, optimizer="sgd", scheduler="onecycle",
                body_lr_mult=1.0)
