"""Training throughput: the tutorial's pipeline against ours, and the frozen-feature cache.

1. LeNet-5 on MNIST, one epoch each, batch 64, alternated ``--rounds`` times:
   - tutorial: torchvision ``MNIST`` with per-sample ``ToTensor`` + ``Normalize``, a
     ``DataLoader`` with 4 workers, plain fp32 SGD (lr 0.01, momentum 0.9);
   - ours, like for like: :func:`tlcore.training.train.train` doing the same work (fp32, no
     augmentation): device-resident uint8 data, batched normalization, channels_last, fused SGD;
   - ours as shipped: the defaults (batched random-affine augmentation, bf16 autocast where the
     CPU has AMX / AVX512-BF16), which do more work per image.
   Images/second are over the training steps of the epoch (validation excluded for both).
2. Frozen EfficientNet-Lite0 (ImageNet) linear probe on cifar10-mini.zip, 3 epochs: the
   feature cache against recomputing the body every step; whole-run wall time and ratio.
3. With ``--baseline DIR`` instead: the like-for-like epoch of this tree against the tlcore in
   ``DIR`` (a checkout of another commit, e.g. ``git worktree add /tmp/base d37e362``), in
   paired rounds of fresh worker processes (see :func:`against_baseline`): a restructure must
   not cost speed.

Run: ``TLCORE_DATA_DIR=../shared/datasets python benchmarks/bench_training.py [--baseline DIR]``

Last measured (2026-11-29, the project's 2-core AMD EPYC VM without AVX512-BF16, torch 2.14.1,
CPU), medians of 5 rounds after an untimed warm-up round, each pipeline on a settled machine:
tutorial 2,371 img/s; ours like for like 8,053 img/s (**3.40x**); ours as shipped 7,183 img/s
(3.03x; it augments every image, and bf16 is not faster on this CPU). Spread over the rounds:
tutorial 2,168-2,550, ours 7,386-9,357. The two other runs that day: 2,494 vs 8,510 (3.41x),
ours 7,653-11,206; and, with the machine faster for both, 2,972 vs 11,108 (3.74x), ours
7,696-13,126 (one round 4.09x, another 2.77x). The 4x goal is not reached on this machine. Why: the raw LeNet-5 step at
batch 64 (forward, backward, fused SGD; no data pipeline at all) measures 7.4k-14k img/s on
this VM within one minute, one process (its neighbours move it), about 9.5k typically: the
ceiling of eager PyTorch here is ~4x this tutorial rate, and our loop runs at that step's
speed. Measured and dropped: torch.compile (5.4k img/s, slower), two processes of one thread
each (4.8k each at once: the 2 vCPUs do not add up), micro-batches of 32 (slower), max pooling
as two strided maxima (6x faster forward, but its backward in tensor ops is 3-5x slower than
the native one), conv+pool as one stride-2 convolution with 4x the output channels (slower),
oneDNN's own pooling (slower), and (earlier) channels_last and fused SGD (kept), bf16, OpenMP
spin policies, GEMM convolutions. On 2026-11-28 (an Intel VM with AMX): 2.67x like for like,
3.17x as shipped.
Feature cache (Lite0, 96 px, 3 epochs, this VM): 78.2 s vs 171.6 s recomputing, 2.20x, same
test accuracy 0.7415 (0.7260 on the Intel VM, before new heads on pretrained bodies started at zero); the
cached run's time is almost all the one pass that computes the features.

Against the one-function loop of d37e362 (``--baseline``, 2026-11-30, an Intel Xeon VM with AMX,
2 vCPUs, 10 paired rounds each): the restructured loop (#11) measured 0.984x (rounds 0.948-1.008)
and, in a second run, 1.005x (0.969-1.032); the old code against a copy of itself, 0.992x
(0.946-1.054): the same speed within this machine's noise. Its profile agrees: 0.7% more Python
calls per epoch (540,871 vs 536,851), no more time in any of them.

Behaviours as callbacks (#23: keep-best, unfreezing, divergence, budget, forgetting, saving; 2026-12-03,
the 2-core AMD EPYC VM, shared with other test runs) against the tree before it: 0.985 (4 rounds,
0.953-0.988; medians of all epochs 15,655 vs 15,445 img/s) on a quiet machine; 1.056 and 0.984 in two
runs under load (single epochs there fell to 600 img/s); the old code against a copy of itself, the
same hour, 1.112 (0.998-1.793). Per-step code is unchanged; each step event (about two a second)
passes through the acting callbacks' hooks: with an event every step, 3.0% more Python calls per MNIST
epoch (569,483 vs 553,039); at the default interval, about 0.05%.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlcore.config import RunConfig  # noqa: E402
from tlcore.data import load_dataset  # noqa: E402
from tlcore.events import Callback  # noqa: E402
from tlcore.models import create_backbone  # noqa: E402
from tlcore.training.train import train  # noqa: E402


def tutorial_epoch(root: str, batch_size: int = 64, workers: int = 4) -> float:
    """The tutorial's loop, verbatim in spirit: per-sample transforms in DataLoader workers."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = datasets.MNIST(root, train=True, download=False, transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers)
    model = create_backbone("lenet5", num_classes=10).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n, t = 0, time.perf_counter()
    for x, y in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        n += len(y)
    return n / (time.perf_counter() - t)


class _TrainRate(Callback):
    """Images/second over the training steps only (the last step event before validation)."""

    def __init__(self):
        self.rate = None

    def on_step(self, trainer, e):
        if e.step == e.steps and self.rate is None:
            self.rate = e.images_per_second


def ours_epoch(data, batch_size: int = 64, **kw) -> float:
    cb = _TrainRate()
    train(RunConfig(dataset="mnist", backbone="lenet5", epochs=1, batch_size=batch_size, **kw), data=data,
          callbacks=[cb])
    return cb.rate


def feature_cache(zip_path: str, epochs: int = 3) -> tuple[float, float, float, float]:
    data = load_dataset(zip_path)
    out = []
    for cache in (True, False):
        cfg = RunConfig(dataset=zip_path, backbone="efficientnet_lite0", weights="imagenet", preset="linear-probe",
                        augment=False, epochs=epochs, batch_size=128, lr=0.05, feature_cache=cache, image_size=96)
        t = time.perf_counter()
        r = train(cfg, data=data)
        out += [time.perf_counter() - t, r.test.accuracy]
    return tuple(out)


# A worker process timing one like-for-like epoch per line read, with the tlcore of its working
# folder. Its callback takes the event as the last argument: hooks received only the event before
# the loop's restructure, (trainer, event) since.
WORKER = """
import os, sys, torch
from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.events import Callback
try:
    from tlcore.training.train import train
except ImportError:  # a tree from before the training package (d37e362)
    from tlcore.train import train
torch.set_num_threads(os.cpu_count() or 1)
class Rate(Callback):
    rate = None
    def on_step(self, *args):
        if args[-1].step == args[-1].steps and self.rate is None:
            self.rate = args[-1].images_per_second
data = load_dataset("mnist", data_dir=os.environ["TLCORE_DATA_DIR"])
for _ in sys.stdin:
    cb = Rate()
    train(RunConfig(dataset="mnist", backbone="lenet5", epochs=1, batch_size=64, precision="fp32", augment=False),
          data=data, callbacks=[cb])
    print(cb.rate, flush=True)
"""


class Worker:
    def __init__(self, tree: Path):
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], cwd=tree, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def epoch(self) -> float:
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def against_baseline(baseline: Path, rounds: int) -> None:
    """This tree's like-for-like epoch against the baseline tree's, as paired rounds.

    Each round starts a fresh worker per tree (in alternating order: a process's own luck moves
    its speed by a few percent), warms both up with two epochs, then times A B B A, so a speed
    trend within the round weighs on both alike. The figure is the median over rounds of
    (A's two epochs) / (B's two): the same code against itself gave 0.992 this way. (Two
    long-lived workers and the medians of all their epochs pooled gave 0.978 for the same code:
    a process's 2nd epoch is slower than its 3rd, and the pooling did not cancel it.)
    """
    here_tree, ratios, ours, theirs = Path(__file__).resolve().parents[1], [], [], []
    for r in range(rounds):
        order = (here_tree, baseline) if r % 2 == 0 else (baseline, here_tree)
        workers = {t: Worker(t) for t in order}
        here, base = workers[here_tree], workers[baseline]
        for _ in range(2):  # warm-up: oneDNN builds its kernels, caches and allocators settle
            here.epoch(), base.epoch()
        a1, b1, b2, a2 = (quiet(w.epoch) for w in (here, base, base, here))
        here.close(), base.close()
        ours += [a1, a2]
        theirs += [b1, b2]
        ratios.append((a1 + a2) / (b1 + b2))
        print(f"round {r + 1}: this tree {a1:,.0f} and {a2:,.0f} img/s | baseline {b1:,.0f} and {b2:,.0f} img/s | "
              f"ratio {ratios[-1]:.3f}", flush=True)
    print(f"LeNet-5 / MNIST like for like, {rounds} paired rounds: this tree / baseline {baseline} = "
          f"{statistics.median(ratios):.3f} (median of rounds; {min(ratios):.3f}-{max(ratios):.3f}); "
          f"medians of all epochs: this tree {statistics.median(ours):,.0f} img/s, baseline "
          f"{statistics.median(theirs):,.0f} img/s")


def quiet(fn, *a, **k):
    """Run one pipeline on a settled machine: the previous one's DataLoader worker processes
    have exited and its garbage is collected, so neither pipeline pays for the other."""
    gc.collect()
    time.sleep(2)
    return fn(*a, **k)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-cache", action="store_true")
    ap.add_argument("--baseline", type=Path, help="only compare this tree's like-for-like epoch with DIR's tlcore")
    args = ap.parse_args()
    root = os.environ.get("TLCORE_DATA_DIR")
    if not root:
        sys.exit("Set TLCORE_DATA_DIR to the folder holding MNIST/raw (and cifar10-mini.zip).")
    if args.baseline:
        return against_baseline(args.baseline.resolve(), args.rounds)
    torch.set_num_threads(os.cpu_count() or 1)
    # The tutorial asks for 4 workers on whatever machine it runs on; PyTorch warns about that
    # on 2 cores each round. It is the setting under test, so the warning is noise here.
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads")
    data = load_dataset("mnist", data_dir=root)
    # One untimed round of each first: oneDNN builds its kernels on first use, the page cache
    # fills, DataLoader workers start. Then the timed rounds, alternating the pipelines.
    tutorial_epoch(root)
    ours_epoch(data, precision="fp32", augment=False)
    ours_epoch(data)
    tut, same, shipped = [], [], []
    for r in range(args.rounds):
        tut.append(quiet(tutorial_epoch, root))
        same.append(quiet(ours_epoch, data, precision="fp32", augment=False))
        shipped.append(quiet(ours_epoch, data))
        print(f"round {r + 1}: tutorial {tut[-1]:,.0f} img/s | ours like for like {same[-1]:,.0f} img/s | "
              f"ours as shipped {shipped[-1]:,.0f} img/s", flush=True)
    mt, ms, mo = (statistics.median(v) for v in (tut, same, shipped))
    print(f"LeNet-5 / MNIST, batch 64, medians of {args.rounds}: tutorial {mt:,.0f} img/s; ours like for like "
          f"{ms:,.0f} img/s, ratio {ms / mt:.2f}x; ours as shipped (augmenting) {mo:,.0f} img/s, ratio {mo / mt:.2f}x")
    # The spread says how much the machine itself moved while measuring (a shared VM's
    # neighbours); the medians above are the figures.
    print(f"spread over the rounds: tutorial {min(tut):,.0f}-{max(tut):,.0f} img/s, ours like for like "
          f"{min(same):,.0f}-{max(same):,.0f} img/s")
    if not args.skip_cache:
        zip_path = str(Path(root) / "cifar10-mini.zip")
        tc, ac, ts, as_ = feature_cache(zip_path)
        print(f"EfficientNet-Lite0 linear probe, cifar10-mini (9,000 train), 3 epochs at 96 px: "
              f"feature cache {tc:.1f} s (test acc {ac:.4f}), recomputing {ts:.1f} s (test acc {as_:.4f}), "
              f"ratio {ts / tc:.2f}x")


if __name__ == "__main__":
    main()
