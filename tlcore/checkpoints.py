"""A run on disk: ``model.safetensors`` + ``config.json`` (+ ``metrics.json``). Never a pickle.

Loading rebuilds the network from the config by name through the backbone registry, then
fills it with tensors from safetensors, which cannot run code. Anything that is not such a
folder, or whose tensors do not fit, is refused with a message.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from .errors import TLCoreError
from .preprocess import InputSpec

FORMAT = "tlcore-run/1"
MODEL_FILE, CONFIG_FILE, METRICS_FILE = "model.safetensors", "config.json", "metrics.json"


def _versions() -> dict[str, str]:
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__}


def save_run(folder: str | Path, model, classes: list[str], *, config: dict | None = None,
             metrics: dict | None = None) -> Path:
    """Write ``model`` (a TransferNet) and what it takes to rebuild it into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / MODEL_FILE))
    meta = {
        "format": FORMAT,
        "backbone": model.backbone,
        "num_classes": model.num_classes,
        "classes": list(classes),
        "input": model.spec.to_dict(),
        "weights": model.weights,
        "frozen": sorted(model.frozen),
        "run": config or {},
        "versions": _versions(),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    if metrics is not None:
        (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return folder


def read_run_config(folder: str | Path) -> dict:
    """The validated ``config.json`` of a run folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TLCoreError(f"{str(folder)!r} is not a run folder (it should hold {MODEL_FILE} and {CONFIG_FILE}).")
    for f in (MODEL_FILE, CONFIG_FILE):
        if not (folder / f).is_file():
            raise TLCoreError(f"{str(folder)!r} is not a tlcore run: {f} is missing.")
    try:
        meta = json.loads((folder / CONFIG_FILE).read_text())
        assert isinstance(meta, dict) and meta.get("format") == FORMAT
        InputSpec.from_dict(meta["input"])
        assert isinstance(meta["backbone"], str) and isinstance(meta["classes"], list)
        assert int(meta["num_classes"]) == len(meta["classes"]) > 0
    except Exception:
        raise TLCoreError(f"{folder / CONFIG_FILE} is not a tlcore run config ({FORMAT}).") from None
    return meta


def read_tensors(folder: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(folder) / MODEL_FILE
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise TLCoreError(f"{path} is not a readable safetensors file ({type(e).__name__}).") from None


def load_run(folder: str | Path, device: str | torch.device = "cpu"):
    """Rebuild a saved TransferNet. Returns ``(model, config)``."""
    from .models import create_backbone

    meta = read_run_config(folder)
    spec = InputSpec.from_dict(meta["input"])
    model = create_backbone(meta["backbone"], weights="none", num_classes=int(meta["num_classes"]),
                            image_size=spec.size)
    model.spec = spec
    model.weights = meta.get("weights", model.weights)
    model.classes = list(meta["classes"])
    tensors = read_tensors(folder)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise TLCoreError(f"The tensors in {folder} do not fit a {meta['backbone']} ({first}).") from None
    return model.to(device).eval(), meta
