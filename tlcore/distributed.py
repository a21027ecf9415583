"""Several processes, one run: torchrun's environment, DistributedDataParallel, and sums across ranks.

``torchrun --nproc_per_node N -m tlcore train ...`` starts N copies; each calls
:func:`init_from_env` (Gloo on CPUs, NCCL on GPUs, one GPU per process). Every rank holds the
data and trains on its own shard of each epoch's order (:class:`tlcore.data.BatchLoader`);
DDP averages the gradients, so all ranks keep identical weights; the trainer sums the epoch's
metrics across ranks; only rank 0 calls back, prints and saves. Every rank takes the same
number of steps (a shard one image short spreads its images over as many batches), so the
shards stay disjoint and complete and no rank waits at a gradient average the others skip.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .data.stream import take


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def init_from_env() -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1); True when distributed."""
    if active():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return True


def finish() -> None:
    if active():
        dist.destroy_process_group()


def wrap(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` as DDP when distributed (gradients averaged across ranks), else as it is."""
    if not active():
        return net
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)


def sum_across(*values: torch.Tensor) -> list[torch.Tensor]:
    """Each scalar tensor summed over all ranks, in one exchange (every rank calls this at the same point)."""
    if not active():
        return list(values)
    both = torch.stack([v.detach().to(torch.float64).reshape(()) for v in values])
    dist.all_reduce(both)
    return list(both.unbind())


def gather_rows(local: torch.Tensor, total: int) -> torch.Tensor:
    """Rows each rank computed for its indices ``rank::world`` of ``total``, put back in order on
    every rank (how the feature cache and the test evaluation split their work)."""
    if not active():
        return local
    w = world()
    per = -(-total // w)
    nccl = dist.get_backend() == "nccl"
    dev = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    pad = torch.zeros((per, *local.shape[1:]), dtype=local.dtype, device=dev)
    pad[:len(local)] = local.to(dev)
    parts = [torch.empty_like(pad) for _ in range(w)]
    dist.all_gather(parts, pad)
    out = torch.empty((total, *local.shape[1:]), dtype=local.dtype, device=dev)
    for r, part in enumerate(parts):
        out[r::w] = part[:len(range(r, total, w))]
    return out.to(local.device)


def my_rows(x: torch.Tensor) -> torch.Tensor:
    """This rank's share of ``x``'s rows (every world-th, from its rank on); streamed images stay files."""
    if not active():
        return x
    return take(x, slice(rank(), None, world()))


def split_rows(fn, x: torch.Tensor):
    """``fn(x)`` computed as each rank ``fn`` of its share, every rank getting all the rows back in
    order (None if ``fn`` gave None); plainly ``fn(x)`` in one process."""
    if not active():
        return fn(x)
    mine = fn(my_rows(x))
    return None if mine is None else gather_rows(mine, len(x))
