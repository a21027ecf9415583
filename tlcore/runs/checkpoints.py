"""A run on disk: ``model.safetensors`` + ``config.json`` (+ ``metrics.json``). Never a pickle.

Loading rebuilds the network from the config by name through the backbone registry, then
fills it with tensors from safetensors, which cannot run code. Anything that is not such a
folder, or whose tensors do not fit, is refused with a message. (Reading the files, without
building anything, is :mod:`tlcore.runs.folder`.)
"""
from __future__ import annotations

import json
import platform
from importlib.metadata import version
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_folder, atomic_write
from ..data.base import ImageData, Split, few_shot
from ..errors import TLCoreError
from ..models import TransferNet, create_backbone, freeze
from ..preprocess import InputSpec
from .folder import CONFIG_FILE, FORMAT, METRICS_FILE, MODEL_FILE, list_runs, read_run_config, read_tensors

__all__ = ["save_run", "write_run", "load_run", "replay_sample", "save_replay", "load_replay", "list_runs", "read_run_config",
           "read_tensors", "MODEL_FILE", "CONFIG_FILE", "METRICS_FILE", "REPLAY_FILE"]
# A small stratified sample of the run's own data, so that fine-tuning it later (the Draw tab's
# "teach it") can mix new examples with old ones and not forget what it knew.
REPLAY_FILE = "replay.safetensors"
REPLAY_PER_CLASS = {"train": 60, "val": 10, "test": 50}
REPLAY_MAX_BYTES = 4 << 20


def _versions() -> dict[str, str]:
    # torchvision's version from its metadata: importing it costs ~1.5 s (it loads torch._dynamo),
    # paid by every process that saves a run, most of which never build a torchvision model.
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": version("torchvision")}


def save_run(folder: str | Path, model: TransferNet, classes: list[str], *, config: dict | None = None,
             metrics: dict | None = None) -> Path:
    """Write ``model`` and what it takes to rebuild it into ``folder``, which appears whole or not
    at all (:func:`tlcore.runs.atomic.atomic_folder`: an existing run of that name is replaced)."""
    with atomic_folder(folder) as tmp:
        write_run(tmp, model, classes, config=config, metrics=metrics)
    return Path(folder)


def write_run(folder: Path, model: TransferNet, classes: list[str], *, config: dict | None = None,
              metrics: dict | None = None) -> Path:
    """The run's files, into ``folder`` as it is (a temporary one: see :func:`save_run`)."""
    folder = Path(folder)
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


def load_run(folder: str | Path, device: str | torch.device = "cpu") -> tuple[TransferNet, dict]:
    """Rebuild a saved TransferNet. Returns ``(model, config)``."""
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


def source_body(backbone: str, weights: str, n_classes: int):
    """The candidate frozen, in eval mode: a saved run whole (its body, and the head of its source
    task, for LEEP), else ``backbone`` with ``weights`` and a new head of ``n_classes``."""
    if weights in ("none", "imagenet"):
        model = create_backbone(backbone, weights=weights, num_classes=n_classes)
    else:
        model, _ = load_run(weights)
        if model.backbone != backbone:
            raise TLCoreError(f"{weights} is a {model.backbone} run, not {backbone}.")
    return freeze(model, preset="linear-probe").eval()


def replay_sample(data: ImageData) -> ImageData | None:
    """A seeded, stratified sample of ``data`` (an ImageData) small enough to keep with a run.

    Per class at most 60 train / 10 val / 50 test images, fewer when the images are large, so
    it stays under 4 MB whatever the dataset. None when a split would be empty.
    """
    per_image = data.channels * data.size * data.size
    total = sum(REPLAY_PER_CLASS.values()) * len(data.classes) * per_image
    shrink = min(1.0, REPLAY_MAX_BYTES / max(total, 1))
    splits = {}
    for split, k in REPLAY_PER_CLASS.items():
        part = data.splits[split]
        k = int(k * shrink)
        if k < 1 or len(part) == 0:
            return None
        splits[split] = part.subset(few_shot(part.labels, k, seed=0))
    return ImageData(f"{data.name} (replay sample)", list(data.classes), **splits, hflip=data.hflip)


def save_replay(folder: str | Path, data: ImageData) -> Path | None:
    """Write :func:`replay_sample` of ``data`` next to a run's model (uint8 tensors, no pickle)."""
    sample = replay_sample(data)
    if sample is None:
        return None
    tensors = {}
    for split, part in sample.splits.items():
        tensors[f"{split}.images"] = part.images[:].contiguous()  # [:] decodes a streamed split
        tensors[f"{split}.labels"] = part.labels.contiguous()
    path = Path(folder) / REPLAY_FILE
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp))
    return path


def load_replay(folder: str | Path, classes: list[str]) -> ImageData | None:
    """The run's replay sample as an ImageData, or None when the run has none (or it is unreadable)."""
    path = Path(folder) / REPLAY_FILE
    if not path.is_file():
        return None
    try:
        t = load_file(str(path))
        splits = {s: Split(t[f"{s}.images"], t[f"{s}.labels"]) for s in REPLAY_PER_CLASS}
    except Exception:  # a damaged replay file only costs the replay, never the model
        return None
    if any(len(s) and not 0 <= int(s.labels.min()) <= int(s.labels.max()) < len(classes) for s in splits.values()):
        return None
    return ImageData(f"{Path(folder).name} (replay sample)", list(classes), **splits)
