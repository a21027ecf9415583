"""Where a run computes and in what precision; moving state to the CPU; which process speaks.

The rules live here so that training, evaluation and the CLI agree: a run tested in bf16 on a
CPU is judged in bf16 again on any other CPU, and only the main process of a distributed run
prints, calls back and saves.
"""
from __future__ import annotations

import contextlib
import math

import torch

from . import distributed
from .errors import TLCoreError

PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def pick_device(name: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU; an explicit choice that is not available is an error."""
    cuda, mps = torch.cuda.is_available(), getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise TLCoreError(f"device {name!r} is not available here; use 'auto' or 'cpu'.")
    return torch.device(name)


def describe_device(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "Apple MPS"
    return f"CPU, {torch.get_num_threads()} threads"


def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16: bf16 matmuls and convolutions run faster than fp32 on this CPU."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # older torch: no probe, so no assumption
        return False


def autocast_dtype(dev: torch.device, precision: str) -> torch.dtype | None:
    """None means fp32.

    Auto: bf16 on CUDA when supported (no loss scaling needed), else fp16; bf16 on a CPU with
    AMX / AVX512-BF16 (a third faster for LeNet-5 here), else fp32; fp32 on MPS.
    """
    if precision == "fp32":
        return None
    if precision == "auto":
        if dev.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if dev.type == "cpu" and cpu_has_fast_bf16() else None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def run_autocast_dtype(dev: torch.device, run: dict) -> torch.dtype | None:
    """The precision to judge a saved run with: on a CPU, the one it was trained and tested in
    (bf16 works on any CPU, if slower without AMX), so its test accuracy is reproduced exactly;
    on a GPU, the usual rule."""
    used = run.get("precision_used")
    if dev.type == "cpu" and used in ("fp32", "bf16"):
        return None if used == "fp32" else torch.bfloat16
    return autocast_dtype(dev, run.get("precision", "auto"))


def autocast(dev: torch.device, dtype: torch.dtype | None):
    """A context computing in ``dtype`` on ``dev``; fp32 (None) is a no-op context, not a
    disabled autocast, which costs a little on every step."""
    return torch.autocast(dev.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


# Below this many multiply-adds an input, a training step's ops are too small to share among CPU
# threads: waking the second thread for each op costs more than its half of the work, and far more
# in a worker thread of a process with other OpenMP pools (the app's case: libgomp then sleeps its
# threads between ops). Measured on this 2-core machine in a worker thread (benchmarks/threads.py),
# one thread against two: LeNet-5 (0.4 M) 1.2x faster, MobileNet-V3-Small at 32 px (2.2 M) 1.7x,
# at 64 px (5.5 M) 1.1x; ResNet-18 at 32 px (37 M) 1.1x slower.
SMALL_STEP_MACS = 10e6


@torch.no_grad()
def macs_per_input(net: torch.nn.Module, example: torch.Tensor) -> float:
    """Multiply-adds of one forward per input of ``example`` (a batch of one or more), in its
    convolutions and linear layers (nearly all of a CNN's). Counted in eval mode: BatchNorm's
    statistics and dropout's random stream are left as they were. (Hooks, not torch's
    FlopCounterMode: its first use costs a second.)"""
    total = 0

    def count(m, _, out):
        nonlocal total
        per_output = m.in_features if isinstance(m, torch.nn.Linear) else m.in_channels // m.groups * math.prod(
            m.kernel_size)
        total += out.numel() * per_output

    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    hooks = [m.register_forward_hook(count) for m in layers]
    was = net.training
    net.eval()
    try:
        net(example)
    finally:
        net.train(was)
        for h in hooks:
            h.remove()
    return total / len(example)


def step_threads(net: torch.nn.Module, example: torch.Tensor, dev: torch.device) -> int | None:
    """1 where ``net``'s steps are too small to share among CPU threads (SMALL_STEP_MACS);
    None (leave the threads as they are) otherwise, or on a GPU."""
    if dev.type != "cpu" or torch.get_num_threads() == 1:
        return None
    return 1 if macs_per_input(net, example) < SMALL_STEP_MACS else None


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """Inside: torch on ``n`` CPU threads (None: as it was). The setting is mostly the calling
    thread's (OpenMP's is per thread; torch's default for new threads is put back after)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def to_cpu(tree):
    """A detached CPU copy of every tensor in nested dicts, lists and tuples; the rest as it is."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return {k: to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_cpu(v) for v in tree)
    return tree


def is_main_process() -> bool:
    """Rank 0 of a distributed run, or the only process: the one that prints, calls back and saves."""
    return distributed.rank() == 0
