"""One CPU thread or all of them, for a training step of each size (tlcore.device.SMALL_STEP_MACS).

Each measurement is a fresh interpreter that first computes in its main thread (as the app does
at start, leaving an OpenMP pool there), then trains in a worker thread (as the app's jobs do):
SGD steps of a backbone at a batch of 64 (a few seconds' worth), all threads against one. Prints seconds (the median of
``--repeats``) and the ratio; below SMALL_STEP_MACS the engine's rule picks one thread.

Run: ``python benchmarks/threads.py [--repeats 3]``

Last measured (2026-12-04, Intel Xeon VM with AMX, 2 vCPUs, torch 2.14.1, medians of 3; this VM's
timings vary up to 2x between runs), seconds on 2 threads / 1 thread (ratio): LeNet-5 at 28 px
2.01 / 1.67 (1.20); MobileNet-V3-Small at 32 px 1.86 / 1.08 (1.72), at 64 px 1.28 / 1.18 (1.08);
ResNet-18 at 32 px 1.67 / 1.86 (0.90); EfficientNet-Lite0 at 128 px 9.18 / 7.29 (1.26: its
depthwise steps did not gain from two threads either; the rule leaves it, as its forward pass
alone was faster on two in an earlier run). The Compare curve of the e2e tests (LeNet-5 from
MNIST, shots 1 and 5, two seeds, three strategies) in a worker thread, back to back on the same
machine: 25.9 and 24.9 s before the rule, 18.1 and 12.5 s after.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (backbone, image side, steps): about the same seconds each
CASES = [("lenet5", 28, 300), ("mobilenet_v3_small", 32, 20), ("mobilenet_v3_small", 64, 10), ("resnet18", 32, 10),
         ("efficientnet_lite0", 128, 3)]

CHILD = r"""
import json, sys, threading, time, torch
sys.path.insert(0, {root!r})
from tlcore.device import macs_per_input
from tlcore.models import create_backbone
name, size, threads, steps = {name!r}, {size}, {threads}, {steps}
torch.randn(500, 500) @ torch.randn(500, 500)  # the main thread's OpenMP pool, as in the app

def run(out):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = create_backbone(name, weights="none", num_classes=10)
    x = torch.randn(64, net.spec.channels, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,))
    net = net.to(memory_format=torch.channels_last)
    out["macs"] = macs_per_input(net, x[:1])
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    out["seconds"] = time.perf_counter() - t

out = {{}}
worker = threading.Thread(target=run, args=(out,))
worker.start()
worker.join()
print(json.dumps(out))
"""


def measure(name: str, size: int, threads: int, steps: int) -> dict:
    code = CHILD.format(root=str(ROOT), name=name, size=size, threads=threads, steps=steps)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from tlcore.device import SMALL_STEP_MACS

    cpus = os.cpu_count() or 1
    print(f"{cpus} CPUs; the rule: one thread below {SMALL_STEP_MACS / 1e6:.0f} M multiply-adds an image")
    print(f"{'backbone':<20} {'px':>4} {'M MACs':>8} {f'{cpus} thr s':>9} {'1 thr s':>8} {'ratio':>6}  rule")
    for name, size, steps in CASES:
        times = {}
        for threads in (cpus, 1):
            runs = [measure(name, size, threads, steps) for _ in range(args.repeats)]
            times[threads] = statistics.median(r["seconds"] for r in runs)
            macs = runs[0]["macs"]
        rule = "1 thread" if macs < SMALL_STEP_MACS else "all"
        print(f"{name:<20} {size:>4} {macs / 1e6:>8.1f} {times[cpus]:>9.2f} {times[1]:>8.2f} "
              f"{times[cpus] / times[1]:>6.2f}  {rule}")


if __name__ == "__main__":
    main()
