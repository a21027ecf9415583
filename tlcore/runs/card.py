"""A run's model card: what it was trained on, how, how well, and what it is not for.

Written into every saved run folder (so it is in the run's zip) and beside every export, from
the run's own ``config.json`` and ``metrics.json``: a card says nothing the files do not.
"""
from __future__ import annotations

import time
from pathlib import Path

from .atomic import write_text
from .folder import read_metrics, read_run_config

CARD_FILE = "MODEL_CARD.md"
HYPER = ("epochs", "batch_size", "lr", "optimizer", "scheduler", "body_lr_mult", "label_smoothing", "augment",
         "l2sp", "lwf_weight", "seed", "precision_used")


def model_card(folder: str | Path, name: str | None = None) -> str:
    """The card of the run in ``folder``, titled ``name`` (default: the folder's name)."""
    meta, metrics = read_run_config(folder), read_metrics(folder)
    run, data, summary = meta.get("run") or {}, metrics.get("dataset") or {}, metrics.get("summary") or {}
    test = metrics.get("test") or {}
    spec = meta["input"]
    weights = run.get("weights", meta.get("weights", "none"))
    origin = ("random initialisation (trained from scratch)" if weights == "none" else
              f"a saved run, `{Path(weights).name}`, as the source model" if "/" in str(weights) else f"`{weights}`")
    splits = data.get("splits", {})
    lines = [
        f"# Model card: {name or Path(folder).name}",
        f"*Written {time.strftime('%Y-%m-%d %H:%M')} by Transfer Learning Studio (tlcore).*",
        "## Model",
        f"- Backbone: `{meta['backbone']}`; pretrained weights: {origin}.",
        f"- Frozen layer groups: {', '.join(meta.get('frozen') or []) or 'none (every layer trained)'}.",
        f"- Input: {spec['channels']}×{spec['size']}×{spec['size']}, scaled to [0, 1], then normalized with "
        f"mean {spec['mean']} and std {spec['std']}. Output: one logit per class (softmax for probabilities).",
        f"- Classes ({len(meta['classes'])}): {', '.join(meta['classes'])}.",
        "## Data",
        f"- Dataset: `{data.get('name', run.get('dataset', '?'))}`; images: train {splits.get('train', '?')}, "
        f"validation {splits.get('val', '?')}, test {splits.get('test', '?')}.",
        "## Training",
        "- " + ", ".join(f"{k} {run[k]}" for k in HYPER if k in run) + ".",
        f"- {summary.get('message', '')} {summary.get('seconds', '?')} s on {summary.get('device', '?')}.",
        "## Metrics (test split, never used to choose the weights)",
        f"- Accuracy {_pct(test.get('accuracy'))}, macro AUC {_num(test.get('macro_auc'))}, micro AUC "
        f"{_num(test.get('micro_auc'))}, on {test.get('size', '?')} images; validation accuracy "
        f"{_pct(summary.get('val_accuracy'))}.",
        *_forgetting(run, summary, weights),
        "## Intended use and limits",
        "- For teaching and for trying transfer learning: a quick, honest answer to whether a pretrained "
        "backbone helps on this data. Not for decisions about people, health, safety or money.",
        "- It knows only the classes above: any image gets one of them, however unlike them it is. Expect "
        "lower accuracy on images unlike its training data (other cameras, lighting, handwriting, sizes).",
        f"- The test set is {splits.get('test', 'a few')} images: the accuracy above is an estimate with that "
        "much uncertainty.",
    ]
    return "\n\n".join(lines) + "\n"


def _forgetting(run: dict, summary: dict, weights) -> list[str]:
    """What fine-tuning kept of the source task, when the run was measured on it (a saved run as
    the source, its replay sample read through the source's own head): before, after, and the
    regularizers that were on."""
    before, after = summary.get("source_accuracy_before"), summary.get("source_accuracy_after")
    if before is None or after is None:
        return []
    keep = [f"{label} {run[key]}" for key, label in (("l2sp", "L2-SP"), ("lwf_weight", "LwF")) if run.get(key)]
    return ["## The source task (forgetting)",
            f"- On the source task (`{Path(str(weights)).name}`, a sample of its own data, read through its own "
            f"head): {_pct(before)} before fine-tuning, {_pct(after)} after ({(after - before) * 100:+.1f} points).",
            "- Kept by: " + (", ".join(keep) if keep else "no regularizer (L2-SP and LwF were off)") + "."]


def _pct(v) -> str:
    return f"{v:.2%}" if isinstance(v, (int, float)) else "not measured"


def _num(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "not measured"


def card_beside(export: str | Path) -> Path:
    """Where an export's card goes: ``<name>.MODEL_CARD.md`` beside it."""
    export = Path(export)
    return export.with_name(f"{export.stem}.{CARD_FILE}")


def write_card(folder: str | Path, name: str | None = None) -> Path:
    """``MODEL_CARD.md`` into the run folder (``name``: the run's, when ``folder`` is its temporary)."""
    return write_text(Path(folder) / CARD_FILE, model_card(folder, name))
