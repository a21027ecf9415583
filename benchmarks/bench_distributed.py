"""Seconds per epoch of one run on digits: one process, then two (torchrun, Gloo, CPU).

    python benchmarks/bench_distributed.py [--epochs 6]

On a 2-core machine little gain is expected (both processes share the cores, and every step
waits for a gradient average): the point of the two-process path here is correctness, which
tests/test_distributed.py checks. On a machine with GPUs, run it with --nproc 1 / 2 there.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(nproc: int, epochs: int, threads: int) -> dict:
    out = Path(tempfile.mkdtemp()) / "run"
    args = ["-m", "tlcore", "train", "--dataset", "digits", "--weights", "none", "--epochs", str(epochs),
            "--batch-size", "64", "--lr", "0.1", "--optimizer", "sgd", "--out", str(out), "--json"]  # global: 64 // nproc each
    cmd = [sys.executable, *(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
                             if nproc > 1 else []), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    summary = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    history = json.loads((out / "metrics.json").read_text())["history"]
    seconds = history[-1]["seconds"] - history[0]["seconds"]  # after the first epoch: warm
    return {"per_epoch_s": seconds / (len(history) - 1), "test_accuracy": summary["test_accuracy"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=6)
    args = p.parse_args()
    cores = os.cpu_count() or 1
    one = run(1, args.epochs, cores)
    two = run(2, args.epochs, max(1, cores // 2))
    print(f"1 process ({cores} threads):        {one['per_epoch_s']:.3f} s/epoch, test {one['test_accuracy']:.4f}")
    print(f"2 processes ({max(1, cores // 2)} thread(s) each): {two['per_epoch_s']:.3f} s/epoch, "
          f"test {two['test_accuracy']:.4f}")
    print(f"ratio (1-process time / 2-process time): {one['per_epoch_s'] / two['per_epoch_s']:.2f}x")


if __name__ == "__main__":
    main()
