"""Skewed classes on digits (issue #29): a long tail of ratio R (--imbalance), trained with each
remedy (--balance none, loss, sampler) over a few seeds; the mean test accuracy and balanced
accuracy (mean per-class recall) of each, and the rarest class's recall.

    python benchmarks/imbalance.py [--ratio 20] [--seeds 3] [--epochs 0 (the suggested)]

Each run is the CLI's ``train --dataset digits --backbone lenet5 --imbalance R --balance B --seed S``
with the suggested settings for that data (LeNet-5 from scratch), through tlcore's API in this
process. The validation and test splits keep their natural balance, so the test's balanced
accuracy and plain accuracy nearly agree: the test asks about every class alike.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlcore.api import RunConfig, load_run_data, suggest, train  # noqa: E402


def run(ratio: float, balance: str, seed: int, epochs: int) -> dict:
    cfg = RunConfig(dataset="digits", backbone="lenet5", imbalance=ratio, balance=balance, seed=seed)
    data = load_run_data(cfg)  # the long tail, as the CLI loads it
    cfg = suggest(cfg, len(data.train))
    cfg = cfg if epochs == 0 else RunConfig(**{**vars(cfg), "epochs": epochs})
    s = train(cfg, data=data).summary()
    rarest = list(s["per_class_recall"].values())[-1]  # the long tail's last class is its rarest
    return {"test": s["test_accuracy"], "balanced": s["balanced_accuracy"], "rarest": rarest, "epochs": s["epochs"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratio", type=float, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=0, help="0: the suggested number")
    args = ap.parse_args()
    print(f"digits, LeNet-5 from scratch, --imbalance {args.ratio:g}, {args.seeds} seeds (mean ± sd)")
    print(f"{'balance':8s} {'test accuracy':>16s} {'balanced accuracy':>19s} {'rarest class recall':>21s}  s/run")
    for balance in ("none", "loss", "sampler"):
        t0 = time.perf_counter()
        rows = [run(args.ratio, balance, seed, args.epochs) for seed in range(args.seeds)]
        cell = lambda k: f"{statistics.mean(r[k] for r in rows):.3f} ± {statistics.pstdev(r[k] for r in rows):.3f}"
        print(f"{balance:8s} {cell('test'):>16s} {cell('balanced'):>19s} {cell('rarest'):>21s}  "
              f"{(time.perf_counter() - t0) / len(rows):.1f}")


if __name__ == "__main__":
    main()
