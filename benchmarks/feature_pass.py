"""The feature pass against the backbone's own limit and against what a user would write.

In one process, on the same images (cifar10-mini's test photos, 32 px JPEGs, shown at 224 px):

1. **raw**: EfficientNet-Lite0's body alone on random tensors already at 224 px, batch 64,
   channels_last, inference mode: fp32, and bf16 autocast (slower than fp32 on a CPU without
   AVX512-BF16/AMX; the project uses it only where it is fast, ``device.cpu_has_fast_bf16``);
2. **project**: ``tlcore.training.feature_cache.compute_features`` on the decoded uint8 images
   (resize to 224 and normalisation per batch, in its own batches (``tlcore.preprocess.pass_batch``:
   32 at 224 px) and the precision the project picks here);
3. **torchvision**: ``ImageFolder`` over the same JPEGs + ``DataLoader`` (2 workers) + PIL
   ``Resize(224)`` / ``ToTensor`` / ``Normalize``, the same body in eval mode, fp32: once in this
   process, and once in a fresh one with glibc's malloc as it comes (``TLCORE_MALLOC=default``),
   which is what a user's own script gets (tlcore tunes malloc on import: ``tlcore/__init__.py``).

Prints images/second for each and the ratios the issue asks for (project / raw bf16 and
project / best raw; project / the plain-process torchvision pipeline).

Run: ``TLCORE_DATA_DIR=../shared/datasets python benchmarks/feature_pass.py [--images 512]``
(alone: two torch processes on 2 cores slow each other).

Last measured (2026-12-05, 2-core AMD EPYC VM without AVX512-BF16, torch 2.14.1, 512 images; the
project's pass now runs the body with its BatchNorms folded, ``tlcore/models/fold.py``, "raw" the
body as it is): raw fp32 71.1 images/s, raw bf16 4.2, project 100.9 (**1.42x the best raw rate;
24.0x raw bf16**), torchvision pipeline 61.2 in this process, **29.1 in a plain process (project /
torchvision 3.47)**.

Before the fold (2026-12-04, same VM and command):
raw fp32 69.9 images/s, raw bf16 3.5 (bf16 emulated: the project stays in fp32 here), project 72.8
(**1.04x the best raw rate**), torchvision pipeline 49.6 in this process, **23.6 in a plain
process (project / torchvision 3.09)**. Before malloc was tuned the same run read raw fp32 25.1,
project 26.8, torchvision 23.1: at 224 px most of the body's time went to page faults (each
batch's activations mapped afresh and unmapped again), not arithmetic.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tlcore  # noqa: E402
from tlcore.data import load_dataset  # noqa: E402
from tlcore.device import autocast, autocast_dtype, cpu_has_fast_bf16  # noqa: E402
from tlcore.models import create_backbone, freeze  # noqa: E402
from tlcore.events import StopToken  # noqa: E402
from tlcore.paths import data_dir  # noqa: E402
from tlcore.training.feature_cache import compute_features  # noqa: E402

BATCH = 64
TORCHVISION = "torchvision pipeline, a plain process (what a user gets)"


def rate(fn, images: int) -> float:
    fn(BATCH)  # warm-up: allocation, oneDNN's plans
    t = time.perf_counter()
    fn(images)
    return images / (time.perf_counter() - t)


def raw(model, dtype):
    x = torch.randn(BATCH, 3, 224, 224).contiguous(memory_format=torch.channels_last)

    def go(n):
        with torch.inference_mode(), autocast(torch.device("cpu"), dtype):
            for _ in range(max(1, n // BATCH)):
                model.forward_features(x)
    return go


def project(model, images, dtype):
    def go(n):
        compute_features(model, images[:n], torch.device("cpu"), amp=dtype, stop=StopToken())  # its own batch
    return go


def torchvision_pipeline(model, folder: Path):
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize(224), transforms.ToTensor(),
                             transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    ds = datasets.ImageFolder(str(folder), transform=tf)

    def go(n):
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=BATCH, num_workers=2)
        model.eval()
        with torch.inference_mode():
            for x, _ in loader:
                model.forward_features(x)
    return go


def body() -> torch.nn.Module:
    model = freeze(create_backbone("efficientnet_lite0", weights="imagenet", num_classes=10), preset="linear-probe")
    return model.eval().to(memory_format=torch.channels_last)


def torchvision_rate(zip_path: Path, n: int) -> float:
    """The torchvision pipeline's images/second on the test photos of ``zip_path``."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(zip_path) as z:
        members = [m for m in z.namelist() if "/test/" in m and m.lower().endswith(".jpg")]
        z.extractall(tmp, members)
        return rate(torchvision_pipeline(body(), next(Path(tmp).glob("*/test"))), n)


def plain_process_rate(n: int) -> float:
    """:func:`torchvision_rate` in a fresh process with malloc as glibc sets it (TLCORE_MALLOC=default):
    what a user's own script gets."""
    env = {**os.environ, "TLCORE_MALLOC": "default"}
    out = subprocess.run([sys.executable, __file__, "--images", str(n), "--torchvision-only"], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--torchvision-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.images
    zip_path = data_dir() / "cifar10-mini.zip"
    if args.torchvision_only:
        print(torchvision_rate(zip_path, n))
        return
    images = load_dataset(str(zip_path)).test.images[:n]
    model = body()
    chosen = autocast_dtype(torch.device("cpu"), "auto")
    rates = {"raw fp32": rate(raw(model, None), n), "raw bf16": rate(raw(model, torch.bfloat16), n),
             f"project ({'bf16' if chosen else 'fp32'})": rate(project(model, images, chosen), n),
             "torchvision pipeline, this process (malloc tuned)": torchvision_rate(zip_path, n)}
    rates[TORCHVISION] = plain_process_rate(n)
    print(f"EfficientNet-Lite0 body, 224 px, batch {BATCH}, {n} images, {torch.get_num_threads()} threads, "
          f"fast bf16 on this CPU: {cpu_has_fast_bf16()}, malloc tuned here: {tlcore.MALLOC_TUNED}")
    for k, v in rates.items():
        print(f"  {k:55s} {v:7.1f} images/s")
    mine = rates[next(k for k in rates if k.startswith("project"))]
    print(f"project / raw bf16: {mine / rates['raw bf16']:.2f}; project / best raw: "
          f"{mine / max(rates['raw bf16'], rates['raw fp32']):.2f}; project / torchvision: "
          f"{mine / rates[TORCHVISION]:.2f}")


if __name__ == "__main__":
    main()
