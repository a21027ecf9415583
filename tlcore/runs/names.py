"""A run's name in words, saying what sets it apart: "digits · from MNIST · full · L2-SP 0.03".

Always the data, the source and the freezing; then the settings that keep the source (L2-SP,
LwF...) when they are on; then, among runs set side by side, whatever else differs between them
(the rate, the seed...). The runs table and the studies name their runs this way, so two runs
never look alike unless they are.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from ..config import RunConfig
from ..data import DATASETS, is_path
from ..errors import TLCoreError
from ..paths import BUNDLED_RUNS
from .folder import strategy_label, read_run_config, run_row, source_folder

SEP = " · "
# Settings named whenever they are on: they change what the run is.
SET = (("l2sp", "L2-SP {}"), ("lwf_weight", "LwF {}"), ("head_l2", "head L2 {}"),
       ("unfreeze_every", "unfreezing every {} epochs"), ("train_bn", "BatchNorm trains"))
# Settings named only when they differ among the runs named together.
VARYING = (("samples_per_class", "{} per class"), ("lr", "lr {}"), ("body_lr_mult", "body at {}x"),
           ("optimizer", "{}"), ("scheduler", "{} schedule"), ("epochs", "{} epochs"), ("batch_size", "batch {}"),
           ("lwf_temperature", "LwF T {}"), ("label_smoothing", "smoothing {}"), ("weight_decay", "decay {}"),
           ("augment", "augment {}"), ("image_size", "{} px"), ("seed", "seed {}"))


def run_name(run: RunConfig | dict, others: Iterable[RunConfig | dict] = ()) -> str:
    """What ``run`` (a RunConfig, or a saved run's ``config.json`` "run" dict) is, in a few words,
    with whatever differs from ``others`` (the runs it is shown beside)."""
    r = _as_dict(run)
    rest = [_as_dict(o) for o in others]
    parts = [dataset_label(r.get("dataset")), source_label(r.get("weights")), strategy_label(r)]
    parts += [fmt.format(_fmt(r[k])) for k, fmt in SET if r.get(k)]
    parts += [fmt.format(_fmt(r.get(k))) for k, fmt in VARYING
              if any(o.get(k) != r.get(k) for o in rest) and r.get(k) is not None]
    return SEP.join(parts)


def _as_dict(run: RunConfig | dict) -> dict:
    if isinstance(run, RunConfig):
        return dataclasses.asdict(run)
    if isinstance(run, dict):
        return run
    raise TLCoreError(f"A run to name is a RunConfig or a run's config dict, got {type(run).__name__}.")


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def dataset_label(name) -> str:
    """"MNIST" for torchvision's set, "digits", or a folder's or zip's own name."""
    name = str(name or "?")
    if is_path(name):
        return Path(name).stem
    entry = DATASETS.get(name) if name in DATASETS else None
    return getattr(entry, "cls", None) or name


def source_label(weights) -> str:
    """"from scratch", "from ImageNet", "from MNIST" (a bundled run: what it learnt), or "from <run>"."""
    weights = str(weights or "none")
    if weights in ("none", "imagenet"):
        return "from scratch" if weights == "none" else "from ImageNet"
    folder = source_folder(weights)
    if folder is None:
        return f"from {Path(weights).name}"
    if folder.resolve().parent != BUNDLED_RUNS.resolve():
        return f"from {folder.name}"
    try:
        return f"from {dataset_label((read_run_config(folder).get('run') or {}).get('dataset') or folder.name)}"
    except TLCoreError:
        return f"from {folder.name}"


def table_rows(folders: dict[str, str | Path]) -> list[dict]:
    """A runs table: a row each (``run_row``), with "what" (its :func:`run_name` beside the others)
    after the run's name. A folder that no longer reads as a run is left out."""
    rows, runs = [], []
    for name, folder in folders.items():
        try:
            rows.append(run_row(folder, name=name))
            runs.append(read_run_config(folder).get("run") or {})
        except TLCoreError:  # deleted or damaged meanwhile
            continue
    for i, row in enumerate(rows):
        row["what"] = run_name(runs[i], runs[:i] + runs[i + 1:])
    return rows
