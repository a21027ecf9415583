"""Backbones: a registry of networks that all share the TransferNet face, and their weights."""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import RunConfig
from ..errors import TLCoreError
from ..preprocess import InputSpec
from ..runs.folder import read_run_config, read_tensors
from .freeze import PRESETS, freeze, frozen_for_preset, frozen_groups, preset_names
from .net import HEAD, BodySpec, GroupInfo, TransferNet, body_frozen
from .zoo import BACKBONES, IMAGENET, NONE, TIMM_PREFIX, timm_backbone

__all__ = ["TransferNet", "GroupInfo", "BodySpec", "HEAD", "PRESETS", "list_backbones", "create_backbone",
           "weights_choices", "freeze", "frozen_for_preset", "frozen_groups", "body_frozen", "preset_names",
           "describe_backbone", "architecture"]


def list_backbones() -> list[str]:
    """Registered names; any ``timm:<name>`` from ``timm.list_models()`` works as well."""
    return BACKBONES.names()


def weights_choices(name: str) -> list[str]:
    """The named weights a backbone accepts; a run folder path is accepted too."""
    return [NONE] if name == "lenet5" else [IMAGENET, NONE]


def _build(name: str, weights: str) -> BodySpec:
    if name.startswith(TIMM_PREFIX):
        return timm_backbone(name[len(TIMM_PREFIX):], weights=weights)
    if name not in BACKBONES:
        raise TLCoreError(f"Unknown backbone {name!r}. Valid backbones: {', '.join(BACKBONES.names())}, "
                          f"or 'timm:<name>' for any timm model.")
    return BACKBONES.get(name)(weights=weights)


def create_backbone(name: str, *, weights: str = NONE, num_classes: int, image_size: int | None = None) -> TransferNet:
    """Build a backbone with a new ``num_classes`` head.

    Args:
        name: from :func:`list_backbones`, or ``timm:<name>``.
        weights: ``imagenet``, ``none`` (random init), or the folder of a saved run whose
            body becomes the starting point (transfer from a source task; the head is new).
        image_size: input side; default is what the backbone or its source run used.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise TLCoreError(f"num_classes must be a whole number >= 2, got {num_classes!r}.")
    image_size = RunConfig.check(image_size=image_size)["image_size"]  # the run's own rule and words
    if weights in (IMAGENET, NONE):
        built = _build(name, weights)
        source = None
    elif isinstance(weights, (str, Path)) and Path(weights).exists():
        built, source = _from_run(name, Path(weights))
    else:
        raise TLCoreError(f"Unknown weights {weights!r} for {name}. Valid weights: "
                          f"{', '.join(repr(w) for w in weights_choices(name))}, or the folder of a saved run.")
    groups, seen = [], set()
    for gname, prefixes in built.groups:  # timm groups can share a derived name
        gname = gname if gname not in seen else f"{gname}_{len(seen)}"
        seen.add(gname)
        groups.append((gname, prefixes))
    spec = built.spec
    if image_size is not None:
        spec = InputSpec(spec.channels, image_size, spec.mean, spec.std)
    built = BodySpec(built.body, built.num_features, groups, spec, built.weights)
    model = TransferNet(built, num_classes, backbone=name)
    if source is not None:
        model.body.load_state_dict(source)
        model.source_run = str(weights)  # the whole source model (its head too) lives there
    return model


def architecture(name: str, *, num_classes: int = 2, image_size: int | None = None) -> TransferNet:
    """``name``'s network without its numbers, for what needs only its layer groups and parameter
    counts: built on the meta device, so nothing is allocated or initialised (VGG11's random
    initialisation alone takes 1.9 s on 2 cores). A backbone whose construction reads its own
    values (nothing registered does) is built on the CPU instead."""
    try:
        with torch.device("meta"):
            return create_backbone(name, num_classes=num_classes, image_size=image_size)
    except (RuntimeError, NotImplementedError):  # a value was read from a meta tensor
        return create_backbone(name, num_classes=num_classes, image_size=image_size)


def _from_run(name: str, folder: Path) -> tuple[BodySpec, dict[str, torch.Tensor]]:
    """The body of a saved run, to transfer from. Its backbone must be ``name``."""
    meta = read_run_config(folder)
    if meta["backbone"] != name:
        raise TLCoreError(f"The run {folder.name!r} was trained with backbone {meta['backbone']!r}; "
                          f"choose backbone {meta['backbone']!r} to transfer from it.")
    built = _build(name, NONE)
    body = {k[len("body."):]: v for k, v in read_tensors(folder).items() if k.startswith("body.")}
    expected = built.body.state_dict()
    if set(body) != set(expected) or any(body[k].shape != expected[k].shape for k in body):
        raise TLCoreError(f"The tensors in {folder} do not fit a {name} body.")
    spec = InputSpec.from_dict(meta["input"])
    return BodySpec(built.body, built.num_features, built.groups, spec, f"run:{folder.name}"), body


def describe_backbone(name: str, *, weights: str = NONE, num_classes: int = 10, preset: str | None = None,
                      image_size: int | None = None) -> dict:
    """The JSON summary the CLI and the Model tab show: groups, counts, input."""
    model = (architecture(name, num_classes=num_classes, image_size=image_size) if weights == NONE else
             create_backbone(name, weights=weights, num_classes=num_classes, image_size=image_size))
    if preset is not None:
        freeze(model, preset=preset)
    trainable, total = model.count_parameters()
    return {
        "name": name,
        "weights": model.weights,
        "num_classes": num_classes,
        "input": model.spec.to_dict(),
        "preset": preset,
        "groups": [{"name": g.name, "params": g.params, "trainable": g.trainable} for g in model.layer_groups()],
        "total_params": total,
        "trainable_params": trainable,
        "presets": preset_names(model),
    }
