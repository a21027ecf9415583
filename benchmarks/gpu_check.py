"""CUDA checks for the training engine, run on a lent GPU machine (none in CI).

Prints, for the device it finds: LeNet-5/MNIST 3 epochs (eager and torch.compile), bf16 and
fp16 autocast, the frozen EfficientNet-Lite0 linear probe with and without the feature cache,
and a ResNet-18 fine-tune with augmentation on the GPU. Each line is one measured figure.

Run: ``TLCORE_DATA_DIR=DIR python benchmarks/gpu_check.py`` (DIR holds MNIST/raw and
cifar10-mini.zip). Last run (2026-11-28, one H200, torch 2.11): LeNet-5/MNIST 3 epochs bf16
0.9928 test accuracy in 7.2 s (25.7k img/s), fp16 0.9929 in 6.4 s, torch.compile 0.9928 in
19.9 s (compiling dominates); Lite0 linear probe, warm: 10,000 images' features in 0.5 s.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlcore.config import RunConfig  # noqa: E402
from tlcore.data import load_dataset  # noqa: E402
from tlcore.events import Callback  # noqa: E402
from tlcore.device import autocast_dtype, describe_device, pick_device  # noqa: E402
from tlcore.training.train import train  # noqa: E402


class PhaseTimes(Callback):
    """Seconds spent in each phase of the run."""

    def __init__(self):
        self.t, self.phase, self.times = time.perf_counter(), None, {}

    def _mark(self, phase):
        now = time.perf_counter()
        if self.phase:
            self.times[self.phase] = self.times.get(self.phase, 0) + now - self.t
        self.t, self.phase = now, phase

    def on_phase(self, trainer, phase, fraction=None):
        if fraction in (None, 0.0):
            self._mark(phase)

    def on_run_end(self, trainer, e):
        self._mark(None)


def run(label: str, data, **kw) -> None:
    t = time.perf_counter()
    pt = PhaseTimes()
    r = train(RunConfig(**kw), data=data, callbacks=[pt])
    acc = r.test.accuracy if r.test else float("nan")
    phases = " ".join(f"{k.split()[0]} {v:.1f}" for k, v in pt.times.items())
    print(f"{label:42s} {r.status.value:9s} test acc {acc:.4f} {r.images_per_second:8,.0f} img/s "
          f"{time.perf_counter() - t:5.1f} s wall [{phases}]", flush=True)


def main():
    root = os.environ["TLCORE_DATA_DIR"]
    dev = pick_device("auto")
    print(f"device: {describe_device(dev)}; torch {torch.__version__}; autocast {autocast_dtype(dev, 'auto')}")
    mnist = load_dataset("mnist", data_dir=root)
    run("lenet5 mnist 3 ep (bf16, channels_last)", mnist, dataset="mnist", backbone="lenet5", epochs=3)
    run("lenet5 mnist 3 ep batch 512", mnist, dataset="mnist", backbone="lenet5", epochs=3, batch_size=512, lr=0.2)
    run("lenet5 mnist 3 ep fp16 (GradScaler)", mnist, dataset="mnist", backbone="lenet5", epochs=3, precision="fp16")
    run("lenet5 mnist 3 ep torch.compile", mnist, dataset="mnist", backbone="lenet5", epochs=3, compile=True)
    cifar = load_dataset(str(Path(root) / "cifar10-mini.zip"))
    common = dict(dataset="cifar10-mini", backbone="efficientnet_lite0", weights="imagenet", preset="linear-probe",
                  augment=False, epochs=10)
    run("lite0 linear probe 224px, feature cache", cifar, **common)
    run("lite0 linear probe 224px, no cache", cifar, feature_cache=False, **common)
    run("lite0 finetune-top-2 224px, augment", cifar, dataset="x", backbone="efficientnet_lite0", weights="imagenet",
        preset="finetune-top-2", epochs=3, body_lr_mult=0.1, lr=0.05)
    run("resnet18 random init 64px full, augment", cifar, dataset="x", backbone="resnet18", image_size=64, epochs=5)
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if dev.type == "cuda" else "")


if __name__ == "__main__":
    main()
