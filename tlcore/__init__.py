"""tlcore: the Transfer Learning Studio engine (datasets, backbones, training, runs). Never imports gradio.

The public package, for scripts and notebooks::

    from tlcore import RunConfig, train, load_dataset, create_backbone, load_run, evaluate_run

    data = load_dataset("digits")
    result = train(RunConfig(dataset="digits", weights="assets/models/lenet5-mnist", preset="linear-probe"),
                   data=data, out="runs/probe")
    model, meta = load_run("runs/probe")
    print(evaluate_run(model, data.test, data.classes, run=meta["run"]).accuracy)

and the tutorial's own API, :class:`TransferLearningModel`. Front ends use :mod:`tlcore.api`.
"""
from __future__ import annotations

__version__ = "0.1.0"

# name -> the module that defines it. Loaded on first use: `python -m tlcore --help` and
# `import tlcore.config` need not load torch.
_PUBLIC = {
    "RunConfig": "tlcore.config",
    "TLCoreError": "tlcore.errors",
    "Callback": "tlcore.events",
    "StopToken": "tlcore.events",
    "train": "tlcore.training.train",
    "RunResult": "tlcore.training.result",
    "load_dataset": "tlcore.data",
    "list_datasets": "tlcore.data",
    "create_backbone": "tlcore.models",
    "list_backbones": "tlcore.models",
    "load_run": "tlcore.runs.checkpoints",
    "evaluate_run": "tlcore.api",
    "TransferLearningModel": "tlcore.training.tutorial",
}

__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # once: later lookups find it directly
        return value
    raise AttributeError(f"module 'tlcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
