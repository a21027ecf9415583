"""What FixMatch would cost on this CPU, from measured steps (why the studio labels on cached features).

FixMatch's step (Sohn et al. 2020; USB's benchmark uses the same schedule) trains on B labelled
images and, per labelled one, mu = 7 unlabelled images seen twice (a weak and a strong
augmentation): a forward pass over B * (1 + 2 * mu) images and a backward pass through them all,
2^20 steps in the paper. This times real SGD steps of a whole trainable network at that batch
(B = 64: 960 images a step; forward and backward through every image, which is what the loss asks),
then prints the seconds a step and what 2^20 steps, and 1% of them, would take. A network whose
960-image step does not fit in memory (EfficientNet-Lite0 at 224 px) is timed at 64 images and
scaled by 15; the smaller cases print both, to show how well that scaling holds. Beside it: what
the studio's label spreading costs once the features are cached (its graph fit, measured on
random features of the same shape).

Run: ``python benchmarks/fixmatch_cost.py [--steps 3]``

Last measured (2026-12-04, Intel Xeon VM with AMX, 2 vCPUs, torch 2.14.1, fp32):
LeNet-5 at 28 px 0.22 s a 960-image step (0.11 s in an earlier run; 64-image step x15: 0.15 s),
2^20 steps 3 days; EfficientNet-Lite0 at 32 px 8.84 s (x15 estimate 7.80 s), 107 days; at 224 px
377 s (timed at 64 images, x15), 4,581 days, 1% of them 1,099 h. Label spreading over 1,245 cached
features of 84 dims (digits' pool): 1.7 s; over 45,000 of 1,280 dims (CIFAR-10's): 64.2 s.
"""
from __future__ import annotations

import argparse
import time

import torch

from tlcore.models import create_backbone

B, MU, PAPER_STEPS = 64, 7, 2**20
CASES = [("lenet5", 28, True), ("efficientnet_lite0", 32, True), ("efficientnet_lite0", 224, False)]  # (.., 960 fits)


def step_seconds(name: str, size: int, steps: int, batch: int) -> float:
    """Median seconds of one SGD step of the whole network over ``batch`` images."""
    model = create_backbone(name, num_classes=10, image_size=size).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, model.spec.channels, size, size), torch.randint(0, 10, (batch,))
    times = []
    for _ in range(steps + 1):  # the first warms up
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return sorted(times[1:])[len(times[1:]) // 2]


def spreading_seconds(n: int, dim: int, n_classes: int = 10) -> float:
    from tlcore.training.semi import pseudo_label

    g = torch.Generator().manual_seed(0)
    labelled, pool = torch.randn(n_classes * 5, dim, generator=g), torch.randn(n, dim, generator=g)
    t = time.perf_counter()
    pseudo_label("label-spreading", labelled, torch.arange(n_classes).repeat(5), pool, n_classes)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    batch = B * (1 + 2 * MU)
    for name, size, fits in CASES:
        small = step_seconds(name, size, args.steps, B) * batch / B
        s = step_seconds(name, size, args.steps, batch) if fits else small
        said = f" (64-image step x15: {small:.2f} s)" if fits else " (timed at 64 images, x15)"
        print(f"{name} at {size} px: {s:.2f} s a FixMatch step ({batch} images){said}; 2^20 steps = "
              f"{s * PAPER_STEPS / 86400:,.0f} days, 1% of them = {s * PAPER_STEPS / 100 / 3600:,.1f} h", flush=True)
    for n, dim in ((1_245, 84), (45_000, 1280)):
        print(f"label spreading over {n:,} cached features of {dim} dims: {spreading_seconds(n, dim):.1f} s", flush=True)


if __name__ == "__main__":
    main()
