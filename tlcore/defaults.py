"""Sensible starting hyperparameters for a backbone, its weights and the data size.

What a practitioner would pick first (fastai's and Teachable Machine's habits): a frozen body
trains only a head, on cached features, so many cheap epochs, with Adam (Teachable Machine's
choice: pretrained features are not normalized, EfficientNet-Lite0's have a squared norm of
~300, and SGD at 0.1 oscillates on them: 0.66 vs 0.75 on cifar10-mini, 0.85 vs 0.88 on small
two-class sets, benchmarks/linear_probe.py); a pretrained body being fine-tuned learns ten times
slower than its new head; a small network from scratch on small data takes small batches.

The app's Train tab shows these; the CLI uses them for every flag not given.
"""
from __future__ import annotations

from dataclasses import fields

from .config import RunConfig
from .models import HEAD, create_backbone, frozen_for_preset

# The fields whose Knob says "suggested", in field order (the app's /train endpoint takes them first).
SUGGESTED = tuple(f.name for f in fields(RunConfig) if f.metadata["knob"].suggested)

SMALL = 5_000  # training images below which an epoch is short


def suggested(backbone: str, weights: str, frozen: list[str], group_names: list[str], n_train: int) -> dict:
    """RunConfig overrides: epochs, batch_size, lr, optimizer, scheduler, body_lr_mult."""
    body = [g for g in group_names if g != HEAD]
    all_frozen = bool(body) and set(body) <= set(frozen)
    pretrained = weights != "none"
    small = n_train < SMALL
    if all_frozen:
        return dict(epochs=30 if small else 10, batch_size=32 if small else 64, lr=1e-3, optimizer="adamw",
                    scheduler="onecycle", body_lr_mult=1.0)
    if pretrained:
        return dict(epochs=10 if small else 5, batch_size=32 if small else 64, lr=0.01, optimizer="sgd",
                    scheduler="onecycle", body_lr_mult=0.1)
    if backbone == "lenet5":
        # MNIST in 3 epochs at batch 128, seeds 0-3: lr 0.15 gives 0.9912-0.9933 test accuracy,
        # 0.1 gives 0.9889-0.9919 and 0.3 is unstable (0.9881 at seed 0).
        return dict(epochs=10 if small else 3, batch_size=32 if small else 128, lr=0.1 if small else 0.15,
                    optimizer="sgd", scheduler="onecycle", body_lr_mult=1.0)
    return dict(epochs=15 if small else 8, batch_size=64, lr=0.05, optimizer="sgd", scheduler="onecycle",
                body_lr_mult=1.0)


def suggested_for(cfg: RunConfig, n_train: int) -> dict:
    """:func:`suggested` for a RunConfig's backbone, weights and freezing."""
    # The layer groups are the architecture's: read them from a randomly initialised copy
    # rather than loading (or downloading) ImageNet weights twice.
    model = create_backbone(cfg.backbone, weights="none" if cfg.weights == "imagenet" else cfg.weights,
                            num_classes=2)
    frozen = cfg.frozen if cfg.frozen is not None else frozen_for_preset(model, cfg.preset)
    if cfg.train_bn:  # BatchNorm keeps learning: the body is not a fixed feature extractor
        frozen = []
    return suggested(cfg.backbone, cfg.weights, list(frozen), model.group_names(), n_train)
