"""Is the budget rule fair? Each strategy at its budget against the same strategy with 5x more.

On ``digits`` with the bundled MNIST LeNet-5 as the source, 5 samples per class, seeds 0-2:
scratch, linear probe and fine-tune, each with the suggested settings (:func:`tlcore.training.suggest.budget`)
and with ``scale=5`` (5x the minimum updates; smaller batches where the epoch cap would bind).
A fair rule leaves each strategy within 2 points of what 5x its budget reaches.

Run: ``python benchmarks/fair_budget.py [--shots 5] [--seeds 3]``

Last measured (2026-11-30, Intel Xeon VM with AMX, 2 vCPUs, torch 2.14.1), test accuracy means
over seeds 0-2, the budget then 5x it: scratch 0.9211 (batch 12, lr 0.0375) / 0.9053 (batch 3);
linear probe 0.9573 / 0.9480; fine-tune 0.9759 / 0.9759. Each within 2 points of 5x its budget,
and above it where 5x overfits the 50 images. Before the learning rate followed the batch,
scratch scored 0.8375 at the budget and 0.3955 at 5x (lr 0.1 at batch 3 is noise).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlcore.studies.compare import strategy_config  # noqa: E402
from tlcore.studies.curve import shots_of  # noqa: E402
from tlcore.config import STRATEGIES  # noqa: E402
from tlcore.data import load_dataset  # noqa: E402
from tlcore.training.train import train  # noqa: E402

BUNDLED = str(Path(__file__).resolve().parents[1] / "assets" / "models" / "lenet5-mnist")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    data = load_dataset("digits")
    print(f"digits, {args.shots} per class, seeds 0-{args.seeds - 1}; test accuracy mean (runs), epochs run / budget")
    for strategy in STRATEGIES:
        line = []
        for scale in (1, 5):
            accs, epochs, t = [], [], time.perf_counter()
            for seed in range(args.seeds):
                subset = shots_of(data, args.shots, seed)
                cfg = strategy_config(strategy, dataset="digits", backbone="lenet5", weights=BUNDLED,
                                      n_train=len(subset.train), seed=seed, scale=scale)
                r = train(cfg, data=subset)
                accs.append(r.test.accuracy)
                epochs.append(f"{len(r.history)}/{cfg.epochs}")
            line.append(f"x{scale}: {statistics.fmean(accs):.4f} ({', '.join(f'{a:.3f}' for a in accs)}; "
                        f"batch {cfg.batch_size}, epochs {' '.join(epochs)}; {time.perf_counter() - t:.1f} s)")
        print(f"{strategy:13s} " + " | ".join(line), flush=True)


if __name__ == "__main__":
    main()
