"""Sensible starting hyperparameters for a backbone, its weights and the data size.

What a practitioner would pick first (fastai's and Teachable Machine's habits): a frozen body
trains only a head, on cached features, so many cheap epochs, with Adam (Teachable Machine's
choice: pretrained features are not normalized, EfficientNet-Lite0's have a squared norm of
~300, and SGD at 0.1 oscillates on them: 0.66 vs 0.75 on cifar10-mini, 0.85 vs 0.88 on small
two-class sets, benchmarks/linear_probe.py); a pretrained body being fine-tuned learns ten times
slower than its new head; a small network from scratch on small data takes small batches.

Budgets are fair by one rule for every recipe (:func:`budget`): at least ``MIN_STEPS`` updates,
in epochs of a few steps, with early stopping on validation loss once the epochs were raised
for small data. Without it, 5 samples per class of ``digits`` in 10 epochs of 32 were 20
steps: 0.11-0.32 from scratch, where 150 epochs reach 0.87-0.90 (seeds 0-2).

The app's Train tab shows these; the CLI uses them for every flag not given.
"""
from __future__ import annotations

import functools
import math
from dataclasses import fields

from ..config import MAX_EPOCHS, RunConfig
from ..models import architecture, body_frozen, create_backbone, frozen_groups

# The fields whose Knob says "suggested", in field order (the app's /train endpoint takes them first).
SUGGESTED = tuple(f.name for f in fields(RunConfig) if f.metadata["knob"].suggested)

SMALL = 5_000  # training images below which an epoch is short
MIN_STEPS = 400  # updates every run gets, whatever the data's size (measured: benchmarks/fair_budget.py)
MIN_BATCH = 4


def suggested(backbone: str, weights: str, frozen: list[str], group_names: list[str], n_train: int,
              *, scale: float = 1.0, train_bn: bool = False) -> dict:
    """RunConfig overrides (the SUGGESTED fields): a recipe for this model, under :func:`budget`.
    ``frozen``: the frozen groups (``train_bn``: their BatchNorm trains, so the body is not fixed)."""
    all_frozen = body_frozen(frozen, group_names, train_bn=train_bn)
    return budget(_recipe(backbone, weights != "none", all_frozen, n_train < SMALL), n_train,
                  frozen_body=all_frozen, scale=scale)


def budget(recipe: dict, n_train: int, *, frozen_body: bool, scale: float = 1.0) -> dict:
    """The recipe's epochs and batch size stretched to at least ``scale * MIN_STEPS`` updates.

    The batch shrinks on small data (an epoch of at least about 4 steps, down to ``MIN_BATCH``
    images, halved again while the epochs would pass the cap) and SGD's learning rate with it
    (at 12 instead of 32 images, lr 0.1 left 5-shot digits from scratch at 0.84; scaled, 0.92);
    the epochs grow to reach the steps, and early stopping (patience a fifth of the epochs, at
    least 5) ends a run whose validation loss has stopped improving. Data big enough for the
    recipe is left as it was. ``benchmarks/fair_budget.py`` checks the rule against 5x it.
    """
    steps_wanted = math.ceil(scale * MIN_STEPS)
    bs = min(recipe["batch_size"], max(MIN_BATCH, n_train // 4))
    while bs > 2 and _steps(n_train, bs, frozen_body) * MAX_EPOCHS < steps_wanted:  # 2: BatchNorm needs a pair
        bs = max(2, bs // 2)
    epochs = max(recipe["epochs"], math.ceil(steps_wanted / _steps(n_train, bs, frozen_body)))
    epochs = min(MAX_EPOCHS, epochs)
    patience = 0 if epochs == recipe["epochs"] else max(5, epochs // 5)
    lr = recipe["lr"]
    if recipe["optimizer"] == "sgd":  # SGD's rate follows its batch (linear scaling): as noisy per image as before
        lr = lr * bs / recipe["batch_size"]
    return {**recipe, "batch_size": bs, "epochs": epochs, "early_stopping": patience, "lr": lr}


def _steps(n_train: int, bs: int, frozen_body: bool) -> int:
    """Steps an epoch, as the trainer cuts it (tlcore.training.batches: a final short batch is dropped
    when the body trains)."""
    return max(1, n_train // bs if n_train > bs and not frozen_body else math.ceil(n_train / bs))


def _recipe(backbone: str, pretrained: bool, all_frozen: bool, small: bool) -> dict:
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


def suggested_for(cfg: RunConfig, n_train: int, *, scale: float = 1.0) -> dict:
    """:func:`suggested` for a RunConfig's backbone, weights and freezing."""
    # The layer groups are the architecture's: read from its layout (no weights loaded or
    # downloaded, nothing initialised).
    if cfg.weights in ("none", "imagenet"):
        model = architecture(cfg.backbone)
    else:  # a run's folder: its backbone is checked against the run's own
        model = create_backbone(cfg.backbone, weights=cfg.weights, num_classes=2)
    frozen = frozen_groups(model, preset=cfg.preset, frozen=cfg.frozen)
    return suggested(cfg.backbone, cfg.weights, frozen, model.group_names(), n_train, scale=scale,
                     train_bn=cfg.train_bn)


# -- which model, from what the data is -----------------------------------------------------------
PHOTO_BACKBONE = "efficientnet_lite0"  # the one backbone whose ImageNet weights ship offline
MIN_PHOTO_SIDE = 64  # colour images this big or bigger are photos; smaller (CIFAR's 32) stay small-image data


def suggested_model(data) -> dict | None:
    """For colour photos, a pretrained photo backbone as a linear probe, with why in one line from
    the data's own numbers; None for anything else (digits, 32-pixel sets: the default fits them)."""
    if data.channels != 3 or data.size < MIN_PHOTO_SIDE:
        return None
    n, k = len(data.train), len(data.classes)
    head = _features(PHOTO_BACKBONE) * k + k
    return {"backbone": PHOTO_BACKBONE, "weights": "imagenet", "preset": "linear-probe",
            "label": "Use EfficientNet-Lite0 pretrained on ImageNet, training only a new head (linear probe)",
            "why": (f"These are colour photos ({data.size}×{data.size} px, {k} classes, {n:,} to train on). "
                    f"EfficientNet-Lite0 learned photo features from ImageNet's 1.3 million photos; a linear probe "
                    f"keeps them and trains only a new head of {head:,} weights on them.")}


@functools.lru_cache(maxsize=4)
def _features(backbone: str) -> int:
    return architecture(backbone).num_features
