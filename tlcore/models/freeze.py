"""Which layer groups train: by name, or by preset (linear probe, fine-tune top K, full).

Inside the engine freezing is one thing: the set of frozen groups (``model.frozen``), from
which ``requires_grad`` follows and :func:`body_frozen` answers whether the body learns at
all. A preset is only a way to ask for such a set: :func:`frozen_groups` resolves it, once.

``freeze`` follows Lightning's ``BaseFinetuning.freeze``: frozen parameters stop needing
gradients, and by default their BatchNorm layers also stop updating running statistics
(``train_bn=True`` lets BatchNorm of frozen groups keep training, Lightning's default).
"""
from __future__ import annotations

import re

from ..config import check_freezing
from ..errors import TLCoreError
from .net import HEAD, TransferNet, body_frozen

__all__ = ["PRESETS", "preset_names", "frozen_for_preset", "frozen_groups", "freeze", "body_frozen"]

PRESETS = ("linear-probe", "finetune-top-K", "full")


def preset_names(model: TransferNet) -> list[str]:
    """Every preset valid for this model, K spelled out."""
    k = len(model.group_names()) - 1
    return ["linear-probe", *(f"finetune-top-{i}" for i in range(1, k)), "full"]


def frozen_for_preset(model: TransferNet, preset: str) -> list[str]:
    """Names of the groups a preset freezes."""
    body = model.body_group_names()
    if preset == "linear-probe":
        return body
    if preset == "full":
        return []
    m = re.fullmatch(r"finetune-top-(\d+)", preset or "")
    if m and 1 <= int(m.group(1)) <= len(body):
        return body[: len(body) - int(m.group(1))]
    raise TLCoreError(
        f"Unknown preset {preset!r} for {model.backbone}. Valid presets: 'linear-probe', "
        f"'finetune-top-K' with K from 1 to {len(body)}, 'full'."
    )


def frozen_groups(model: TransferNet, *, preset: str | None = None, frozen: list[str] | None = None) -> list[str]:
    """The groups to freeze, asked for as a preset or by name (not both), checked against ``model``."""
    check_freezing(preset, frozen)
    names = frozen_for_preset(model, preset) if preset is not None else list(frozen or [])
    valid = model.group_names()
    for n in names:
        if n == HEAD:
            raise TLCoreError("The head is new and always trains; freeze body groups only.")
        if n not in valid:
            raise TLCoreError(f"Unknown layer group {n!r} for {model.backbone}. Valid groups: {', '.join(valid)}.")
    return names


def freeze(model: TransferNet, *, preset: str | None = None, frozen: list[str] | None = None,
           train_bn: bool = False) -> TransferNet:
    """Set which groups train, in place; returns the model.

    Args:
        preset: one of :data:`PRESETS` (K a number); exclusive with ``frozen``.
        frozen: explicit group names to freeze (the head always trains).
        train_bn: let BatchNorm inside frozen groups keep training (affine and statistics).
    """
    names = frozen_groups(model, preset=preset, frozen=frozen)
    model.frozen, model.train_bn = frozenset(names), train_bn
    bn_params = set()
    model._frozen_bn = []
    for g in names:
        bns = model.bn_modules(g)
        if train_bn:
            bn_params |= {id(p) for m in bns for p in m.parameters(recurse=False)}
        else:
            model._frozen_bn.extend(bns)
    for g in model.group_names():
        for _, p in model.group_parameters(g):
            p.requires_grad_(g not in model.frozen or id(p) in bn_params)
    model.train(model.training)
    return model
