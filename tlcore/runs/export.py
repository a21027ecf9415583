"""Take a saved run elsewhere: ONNX or TorchScript, each with its preprocessing inside and a model card.

The exported model maps a normalized image batch (N, C, S, S) to logits; everything a consumer
needs to get there travels with it, JSON-encoded: ``classes``, ``input_size`` ([C, S, S]),
``mean`` and ``std`` (the image scaled to [0, 1], resized to S x S, then (x - mean) / std per
channel). ONNX keeps them as metadata properties (and a dynamic batch axis); TorchScript as
attributes of the module (and as ``tlcore.json`` among its extra files). The formats are a
registry: :data:`FORMATS`.
"""
from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Callable

import torch

from .atomic import atomic_write, write_text
from .card import card_beside, model_card
from .checkpoints import load_run
from ..errors import TLCoreError, verify_choice


def metadata(model) -> dict[str, str]:
    """The consumer's facts, each JSON-encoded (ONNX metadata values are strings)."""
    s = model.spec
    return {"classes": json.dumps(list(model.classes)), "input_size": json.dumps([s.channels, s.size, s.size]),
            "mean": json.dumps(list(s.mean)), "std": json.dumps(list(s.std))}


def _example(model) -> torch.Tensor:
    s = model.spec
    return torch.zeros(2, s.channels, s.size, s.size)


def _need(module: str, extra: str = "") -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise TLCoreError(f"Exporting to this format needs the {module!r} package: pip install {module}{extra} "
                          f"(requirements.txt lists it).")


def to_onnx(model, out: Path) -> Path:
    _need("onnx"), _need("onnxscript")
    import onnx

    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(model, (_example(model),), str(out), input_names=["image"], output_names=["logits"],
                      dynamic_shapes=({0: batch},), dynamo=True, external_data=False, verbose=False)
    proto = onnx.load(str(out))
    for key, value in metadata(model).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(out))
    return out


class _WithFacts(torch.nn.Module):
    """The traced network with the consumer's facts as attributes (kept by TorchScript)."""

    def __init__(self, net, classes: list[str], input_size: list[int], mean: list[float], std: list[float]):
        super().__init__()
        self.net = net
        self.classes = classes
        self.input_size = input_size
        self.mean = mean
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def to_torchscript(model, out: Path) -> Path:
    facts = {k: json.loads(v) for k, v in metadata(model).items()}
    traced = torch.jit.trace(model, _example(model), check_trace=False)
    scripted = torch.jit.script(_WithFacts(traced, facts["classes"], facts["input_size"], facts["mean"],
                                           [float(v) for v in facts["std"]]))
    torch.jit.save(scripted, str(out), _extra_files={"tlcore.json": json.dumps(facts)})
    return out


FORMATS: dict[str, tuple[str, Callable]] = {"onnx": (".onnx", to_onnx), "torchscript": (".pt", to_torchscript)}


def export_run(folder: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Export the run in ``folder`` as ``fmt`` to ``out`` (default: beside its files); its model
    card goes beside the export as ``<name>.MODEL_CARD.md``. Returns the export's path."""
    verify_choice(fmt, "format", list(FORMATS))
    suffix, write = FORMATS[fmt]
    model, _ = load_run(folder)
    model = model.float().eval().to(memory_format=torch.contiguous_format)
    if not model.classes:
        raise TLCoreError(f"{Path(folder).name} records no class names: nothing to export them with.")
    out = Path(out) if out else Path(folder) / f"model{suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    # torch announces its exporter's stages on stdout and its own deprecations of TorchScript as
    # warnings: neither is the user's business (a CLI's stdout is its JSON).
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with atomic_write(out) as tmp:  # a download or a run folder never holds half an export
            write(model, tmp)
    write_text(card_beside(out), model_card(folder))
    return out
