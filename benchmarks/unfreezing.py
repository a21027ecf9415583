"""Linear probe, full fine-tune and gradual unfreezing of EfficientNet-Lite0 (ImageNet) on cifar10-mini.

The same data, model, epochs, batch and seed for all three; only how the body learns differs:

- linear probe: the body frozen, its features cached, the head trained (AdamW, the app's recipe);
- full fine-tune: every group trains from the first step (SGD + Nesterov, onecycle, the body at
  ``--body-lr-mult`` x the head's rate, the app's recipe for a pretrained body);
- gradual unfreezing: the same, but the head trains alone in epoch 1 and one more group joins
  per ``--unfreeze-every`` epochs from the top, each deeper group at ``--decay`` x the rate of
  the one above (``unfreeze_every``, ``layer_lr_decay``).

Accuracy on cifar10-mini's test split (all 2000 images); time is the whole ``train`` call
(feature caching and the test evaluation included), data loaded once beforehand.

Run: ``TLCORE_DATA_DIR=../shared/datasets python benchmarks/unfreezing.py [--samples-per-class 100 ...]``

Last measured (2026-11-30, the project's 2-core AMD VM, CPU, shared with four other jobs: load
average 7-14 on 2 cores, so the times are wall-clock under contention and only roughly
comparable), defaults: 100 training images per class (1000), 1000 validation, all 2000 test
images, 96 px, 6 epochs, batch 32, seed 0; probe AdamW 1e-3 onecycle; fine-tunes SGD 0.01
onecycle, body x0.1; gradual: one group per epoch, decay 0.7:

    strategy             test acc  time s  thawed (epoch:+groups)
    linear probe           0.7025     327
    full fine-tune         0.5555    2582
    gradual unfreezing     0.6665  78-632  2:+conv_head 3:+stage7 4:+stage6 5:+stage5 6:+stage4

(Gradual unfreezing ran twice, 632 s under full load and 78 s once the load had fallen: the
same run; its epochs are cheaper than full fine-tuning's, the backward pass stopping at the
deepest live group.) At this size the frozen body wins: fine-tuning 4 M parameters on 1000
upscaled 32 px photos overfits; gradual unfreezing kept its epoch 1 (the head alone, best
validation loss), every later epoch's validation loss was worse, and the run ended 11 points
above full fine-tuning, which moved the whole body from the first step.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlcore.config import RunConfig  # noqa: E402
from tlcore.events import Callback  # noqa: E402
from tlcore.training.train import train  # noqa: E402
from tlcore.training.loop import load_run_data  # noqa: E402


class Thaws(Callback):
    def __init__(self):
        self.seen = []

    def on_unfreeze(self, trainer, e):
        self.seen.append(f"{e.epoch}:+{'+'.join(e.thawed)}")


def strategies(args) -> dict[str, dict]:
    tune = dict(preset="full", optimizer="sgd", lr=args.lr, body_lr_mult=args.body_lr_mult, scheduler="onecycle")
    return {"linear probe": dict(preset="linear-probe", optimizer="adamw", lr=1e-3, scheduler="onecycle"),
            "full fine-tune": tune,
            "gradual unfreezing": dict(tune, unfreeze_every=args.unfreeze_every, layer_lr_decay=args.decay)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples-per-class", type=int, default=100)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01, help="the head's, for the two fine-tunes")
    ap.add_argument("--body-lr-mult", type=float, default=0.1)
    ap.add_argument("--unfreeze-every", type=int, default=1)
    ap.add_argument("--decay", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="one strategy's name")
    args = ap.parse_args()
    zip_path = Path(os.environ.get("TLCORE_DATA_DIR", "../shared/datasets")) / "cifar10-mini.zip"
    base = RunConfig(dataset=str(zip_path), backbone="efficientnet_lite0", weights="imagenet",
                     samples_per_class=args.samples_per_class, image_size=args.image_size, epochs=args.epochs,
                     batch_size=args.batch_size, seed=args.seed).validate()
    data = load_run_data(base)
    print(f"cifar10-mini: {len(data.train)} train, {len(data.val)} val, {len(data.test)} test; EfficientNet-Lite0 "
          f"ImageNet at {args.image_size} px; {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}; "
          f"{torch.get_num_threads()} threads", flush=True)
    rows = []
    for name, over in strategies(args).items():
        if args.only and name != args.only:
            continue
        thaws = Thaws()
        t = time.perf_counter()
        r = train(dataclasses.replace(base, **over).validate(), data=data, callbacks=[thaws])
        rows.append((name, r.test.accuracy, time.perf_counter() - t, " ".join(thaws.seen)))
        print(f"  {name}: {r.test.accuracy:.4f} in {rows[-1][2]:.0f} s ({r.message})", flush=True)
    probe = next((s for n, _, s, _ in rows if n == "linear probe"), None)
    print(f"\n{'strategy':20s} {'test acc':>8s} {'time s':>7s} {'x probe':>8s}  thawed (epoch:+groups)")
    for name, acc, s, seen in rows:
        ratio = f"{s / probe:8.1f}" if probe else f"{'-':>8s}"
        print(f"{name:20s} {acc:8.4f} {s:7.0f} {ratio}  {seen}")


if __name__ == "__main__":
    main()
