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

import ctypes
import os
import sys

__version__ = "0.1.0"

# Freed memory kept for the next batch: glibc serves every allocation above its mmap threshold (32
# MB at most by default) with a fresh mmap and unmaps it when freed, and hands the heap's free top
# back to the system past its trim threshold, so each batch's big activations (EfficientNet-Lite0
# on 64 photos at 224 px: hundreds of MB) are mapped, faulted in page by page and given back again.
# On the project's 2-core VM that was most of a feature pass's time: the linear probe on all of
# CIFAR-10 at 224 px spent 3,687 s in the kernel against 2,388 s in user code (10^9 minor page
# faults). Serving them from the heap and keeping what is freed for the next batch (what PyTorch's
# CPU performance guide gets from jemalloc or tcmalloc) took that run from 56 to 13.5 minutes and its
# peak RSS from 11 to 2.4 GB (with batches sized for the pass, tlcore.preprocess.pass_batch). A trim
# threshold of 1 GB still let a long pass fault (its top chunk passes 1 GB): hence the most mallopt
# takes. The price: memory freed stays with the process, up to its peak.
MALLOC_MMAP_BELOW = 1 << 30  # allocations below this come from the heap
MALLOC_TRIM_ABOVE = 2**31 - 1  # the heap's free top is given back only past this (mallopt's int maximum)


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as above, once, on import; False where not (not Linux, no mallopt, or
    opted out: ``TLCORE_MALLOC=default``, or a ``MALLOC_MMAP_THRESHOLD_`` the user set)."""
    if (not sys.platform.startswith("linux") or os.environ.get("TLCORE_MALLOC") == "default"
            or "MALLOC_MMAP_THRESHOLD_" in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, MALLOC_MMAP_BELOW)) and bool(mallopt(m_trim_threshold, MALLOC_TRIM_ABOVE))


MALLOC_TUNED = keep_freed_memory()

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
