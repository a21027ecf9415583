"""Streaming vs resident: images per second from the same folder, held in memory or read from its
files batch by batch; and a folder of a million images trained on without loading it.

    python benchmarks/bench_stream.py [--million] [--steps 200]

1. cifar10-mini (``$TLCORE_DATA_DIR/cifar10-mini.zip``, extracted to a temp folder: 10,000 train
   JPEGs, 32x32): the loader alone (augmented batches of 128 at LeNet-5's 28x28) and LeNet-5
   training steps, resident and streamed (``TLCORE_MEMORY_CAP`` forced low), and the ratios.
2. ``--million``: 1,000,000 hard links to those JPEGs in ten class folders. Indexing time, peak
   memory of the process, and ``--steps`` training steps' throughput, streamed. Held in memory,
   its decoded images alone would be 2.9 GB at 32x32 (and 141 GB at 224x224).

Last measured (2026-11-30, the 2-core CPU VM, quiet; ``--steps 60 --million``):

    loader alone             resident  144,210 img/s | streamed  4,725 img/s | streamed/resident 0.03x
    LeNet-5 training steps   resident   21,342 img/s | streamed  3,268 img/s | streamed/resident 0.15x
    1,000,000 images: indexed and split in 20.5 s, 720,000 to train on; LeNet-5 steps 3,285 img/s
    streamed; peak RSS 1,304 MB (resident, the decoded train split alone would be 2,109 MB)

Streaming costs what PIL takes to open and decode each JPEG (about 0.4 ms an image on 2 cores), so
it pays only when the data does not fit: a small model on small images is the worst case shown
here; a real backbone's step hides more of it, and a machine with more cores decodes more at once.
"""
from __future__ import annotations

import argparse
import itertools
import os
import resource
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def extract(zip_path: Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(into)
    return into / "cifar10-mini"


def make_million(src: Path, into: Path, total: int) -> Path:
    """``total`` hard links to ``src``'s training JPEGs, ``total / 10`` per class folder (no bytes copied)."""
    root = into / "million"
    for cls in sorted(p.name for p in (src / "train").iterdir()):
        files = sorted((src / "train" / cls).iterdir())
        (root / cls).mkdir(parents=True)
        for i, f in zip(range(total // 10), itertools.cycle(files)):
            os.link(f, root / cls / f"{i:07d}.jpg")
    return root


def throughput(folder: Path, cap: str | None, steps: int, train_steps: bool) -> dict:
    """Images per second over ``steps`` batches: the loader alone, or LeNet-5 training steps."""
    from tlcore.config import RunConfig
    from tlcore.training.loop import Trainer

    if cap:
        os.environ["TLCORE_MEMORY_CAP"] = cap
    else:
        os.environ.pop("TLCORE_MEMORY_CAP", None)
    t0 = time.perf_counter()
    trainer = Trainer(RunConfig(dataset=str(folder), backbone="lenet5", batch_size=128, lr=0.05, augment=True))
    trainer.setup()
    load_s = time.perf_counter() - t0
    seen, t = 0, None
    for i, (x, y) in enumerate(itertools.islice(trainer.loader, steps + 2)):
        if train_steps:
            trainer.step(x, y)
        if i == 1:  # the first two batches warm up (threads, allocator)
            t, seen = time.perf_counter(), 0
        else:
            seen += len(y)
    rate = seen / (time.perf_counter() - t)
    streamed = not isinstance(trainer.data.train.images, torch.Tensor)
    return {"load_s": load_s, "images_per_s": rate, "streamed": streamed, "train": len(trainer.data.train)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--million", action="store_true", help="also train on 1,000,000 hard-linked images")
    args = p.parse_args()
    data_dir = Path(os.environ.get("TLCORE_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    try:
        folder = extract(data_dir / "cifar10-mini.zip", tmp)
        print(f"cifar10-mini extracted: {folder}")
        for what, train_steps in (("loader alone", False), ("LeNet-5 training steps", True)):
            res = throughput(folder, None, args.steps, train_steps)
            st = throughput(folder, "20MB", args.steps, train_steps)
            assert st["streamed"] and not res["streamed"]
            print(f"{what:24s} resident {res['images_per_s']:8,.0f} img/s (load {res['load_s']:.1f} s) | "
                  f"streamed {st['images_per_s']:8,.0f} img/s (index {st['load_s']:.1f} s) | "
                  f"streamed/resident {st['images_per_s'] / res['images_per_s']:.2f}x")
        if args.million:
            t = time.perf_counter()
            big = make_million(folder, tmp, 1_000_000)
            print(f"1,000,000 hard links made in {time.perf_counter() - t:.0f} s")
            before = peak_rss_mb()
            st = throughput(big, "1GB", args.steps, True)
            print(f"1,000,000 images: indexed and split in {st['load_s']:.1f} s, {st['train']:,} to train on; "
                  f"LeNet-5 steps {st['images_per_s']:,.0f} img/s streamed; peak RSS {peak_rss_mb():,.0f} MB "
                  f"(before it {before:,.0f} MB; resident, the decoded train split alone would be "
                  f"{st['train'] * 3 * 32 * 32 / 1024**2:,.0f} MB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
