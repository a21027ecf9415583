"""How much of MNIST the bundled LeNet-5 keeps when fine-tuned on digits: plain, L2-SP, LwF.

The source task is measured on all 10,000 MNIST test images (the run's own
``source_accuracy_after`` uses its 500-image replay sample): the fine-tuned body read by the
source model's head. Full fine-tune (every layer trains at lr 0.1, body multiplier 1), 5
epochs, seed 0, SGD with onecycle, batch 32.

Run: ``TLCORE_DATA_DIR=../shared/datasets python benchmarks/forgetting.py``

Last measured (2026-11-30, Intel Xeon VM with AMX, 2 vCPUs, torch 2.14.1, bf16 autocast in
training): the source model 0.9944 on MNIST; digits test / MNIST after / replay sample after:
plain 0.9889 / 0.3592 / 0.3740; L2-SP 0.03 0.9972 / 0.8300 / 0.8300; L2-SP 0.1 0.9916 / 0.8188 /
0.8220; LwF 1 (T 2) 0.9889 / 0.5708 / 0.6000; LwF 1 (T 5) 0.9944 / 0.6766 / 0.7380. About a
second a run. L2-SP 0.3 diverged at this learning rate (a NaN loss, reported as such).
"""
from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlcore.runs.checkpoints import load_run  # noqa: E402
from tlcore.config import RunConfig  # noqa: E402
from tlcore.data import load_dataset  # noqa: E402
from tlcore.insight.predict import predict_probs  # noqa: E402
from tlcore.training.train import train  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[1] / "assets" / "models" / "lenet5-mnist"
SETTINGS = {"plain": {}, "L2-SP 0.03": {"l2sp": 0.03}, "L2-SP 0.1": {"l2sp": 0.1},
            "LwF 1, T=2": {"lwf_weight": 1.0}, "LwF 1, T=5": {"lwf_weight": 1.0, "lwf_temperature": 5.0}}


def source_accuracy(model, source, mnist) -> float:
    """The fine-tuned body, read by the source model's own head, on MNIST's test set."""
    m = copy.deepcopy(model)
    m.head = copy.deepcopy(source.head)
    return float((predict_probs(m.eval(), mnist.test.images).argmax(1) == mnist.test.labels).float().mean())


def main():
    root = os.environ.get("TLCORE_DATA_DIR")
    if not root:
        sys.exit("Set TLCORE_DATA_DIR to the folder holding MNIST/raw.")
    torch.set_num_threads(os.cpu_count() or 1)
    source, _ = load_run(BUNDLED)
    mnist, digits = load_dataset("mnist", data_dir=root), load_dataset("digits")
    print(f"source model on MNIST test: {source_accuracy(source, source, mnist):.4f}")
    print(f"{'run':12s} {'digits test':>12s} {'MNIST after':>12s} {'replay after':>13s} {'seconds':>8s}")
    for name, extra in SETTINGS.items():
        cfg = RunConfig(dataset="digits", backbone="lenet5", weights=str(BUNDLED), preset="full", epochs=5,
                        lr=0.1, body_lr_mult=1.0, batch_size=32, optimizer="sgd", scheduler="onecycle", seed=0, **extra)
        r = train(cfg, data=digits)
        print(f"{name:12s} {r.test.accuracy:12.4f} {source_accuracy(r.model, source, mnist):12.4f} "
              f"{r.source_accuracy_after:13.4f} {r.seconds:8.1f}", flush=True)


if __name__ == "__main__":
    main()
