"""A run folder's files and how to read them, with no knowledge of models.

``config.json`` says what the run is (format, backbone, classes, input); ``model.safetensors``
holds its tensors. Building a network from them is :mod:`tlcore.runs.checkpoints`' job; reading
them is here, so the backbone registry can take a run's body as weights without importing
checkpoints (which imports the registry).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import TLCoreError
from ..paths import BUNDLED_RUNS
from ..preprocess import InputSpec

FORMAT = "tlcore-run/1"
MODEL_FILE, CONFIG_FILE, METRICS_FILE = "model.safetensors", "config.json", "metrics.json"


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
        # What the card, the runs table and the app read from it, as the app writes it.
        assert all(isinstance(c, str) for c in meta["classes"]) and isinstance(meta.get("run", {}), dict)
        assert isinstance(meta.get("weights", ""), str)
        assert isinstance(meta.get("frozen", []), list) and all(isinstance(g, str) for g in meta.get("frozen", []))
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


def saved_run(root: str | Path, name: str) -> Path:
    """The run folder ``name`` directly inside ``root``, by name: never a path made up by a caller."""
    folder = Path(root) / name
    if name != Path(name).name or name.startswith(".") or not folder.is_dir():
        raise TLCoreError(f"The saved run {name!r} is no longer in {root}.")
    return folder


def source_folder(weights: str | None) -> Path | None:
    """The saved run RunConfig ``weights`` names, or None (imagenet, none, or no longer on disk).
    A bundled run's recorded path still finds it after the app moved (its folder name in assets/)."""
    if not weights or weights in ("imagenet", "none"):
        return None
    folder = Path(weights)
    if not folder.is_dir() and (BUNDLED_RUNS / folder.name).is_dir():
        folder = BUNDLED_RUNS / folder.name
    return folder if folder.is_dir() else None


def list_runs(folder: str | Path) -> list[Path]:
    """The run folders directly inside ``folder`` (newest first); anything else is ignored, hidden
    folders too: a run still being written (or left half-written by a killed process) is one."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for cfg in folder.glob(f"*/{CONFIG_FILE}"):
        run = cfg.parent
        if run.name.startswith("."):  # temporaries are hidden (tlcore.runs.atomic)
            continue
        try:
            read_run_config(run)
            check_tensors(run)
            out.append((run.stat().st_mtime, run))
        except (TLCoreError, OSError):  # damaged, or deleted or replaced meanwhile
            continue
    return [run for _, run in sorted(out, key=lambda t: t[0], reverse=True)]


def check_tensors(folder: str | Path) -> None:
    """TLCoreError unless ``model.safetensors`` is whole: its header read, its size what the header says.
    (Cheap: no tensor is read.)"""
    from safetensors import safe_open

    path = Path(folder) / MODEL_FILE
    try:
        with safe_open(str(path), "pt") as f:
            f.keys()
    except Exception as e:  # safetensors' own error types for truncated or foreign files
        raise TLCoreError(f"{path} is not a readable safetensors file ({type(e).__name__}).") from None


# metrics.json's sections and their types: a section of another type (a hand-edited or damaged
# file) is left out, as if it were missing, rather than failing whoever reads it.
SECTIONS = {"summary": dict, "history": list, "test": dict, "dataset": dict}


def read_metrics(folder: str | Path) -> dict:
    """A run's ``metrics.json`` (summary, history, test, dataset), or {} when it has none or it is
    unreadable; a section that is not what the app writes is left out."""
    try:
        metrics = json.loads((Path(folder) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(metrics, dict):
        return {}
    out = {k: v for k, v in metrics.items() if k not in SECTIONS or isinstance(v, SECTIONS[k])}
    if "history" in out:
        out["history"] = [e for e in out["history"] if isinstance(e, dict)]
    if not isinstance(out.get("dataset", {}).get("splits", {}), dict):
        out["dataset"] = {k: v for k, v in out["dataset"].items() if k != "splits"}
    return out


# The terms that keep a source while fine-tuning, as the runs table names them.
REGULARIZERS = (("l2sp", "L2-SP"), ("lwf_weight", "LwF"), ("head_l2", "head L2"))


def strategy_label(run: dict) -> str:
    """The preset a run used, or "frozen: <groups>" / "full" when it named its groups."""
    frozen = run.get("frozen")
    if frozen is not None:
        return "frozen: " + ", ".join(frozen) if frozen else "full"
    return str(run.get("preset") or "full")


def run_row(folder: str | Path, name: str | None = None) -> dict:
    """One line about a saved run, for a table that sets runs side by side."""
    meta, metrics = read_run_config(folder), read_metrics(folder)
    run, summary = meta.get("run") or {}, metrics.get("summary") or {}
    return {
        "run": name or Path(folder).name,
        "dataset": Path(str(run.get("dataset", "?"))).name,
        "backbone": meta["backbone"],
        "weights": meta.get("weights", "?"),
        "frozen": ", ".join(meta.get("frozen") or []) or "none",
        "epochs": summary.get("epochs"),
        "batch": run.get("batch_size"),
        "lr": run.get("lr"),
        "optimizer": run.get("optimizer"),
        "strategy": strategy_label(run),
        "regularizer": ", ".join(f"{label} {run[k]:g}" for k, label in REGULARIZERS if run.get(k)) or "none",
        "best val acc": summary.get("val_accuracy"),
        "test acc": summary.get("test_accuracy"),
        "source acc after": summary.get("source_accuracy_after"),
        "seconds": summary.get("seconds"),
        "images/s": summary.get("images_per_second"),
    }
