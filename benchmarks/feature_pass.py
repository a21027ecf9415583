"""The feature pass against the backbone's own limit and against what a user would write.

In one process, on the same images (cifar10-mini's test photos, 32 px JPEGs, shown at 224 px):

1. **raw**: EfficientNet-Lite0's body alone on random tensors already at 224 px, batch 64,
   channels_last, inference mode: fp32, and bf16 autocast (slower than fp32 on a CPU without
   AVX512-BF16/AMX; the project uses it only where it is fast, ``device.cpu_has_fast_bf16``);
2. **project**: ``tlcore.training.feature_cache.compute_features`` on the decoded uint8 images
   (resize to 224 and normalisation per batch, in the precision the project picks here);
3. **torchvision**: ``ImageFolder`` over the same JPEGs + ``DataLoader`` (2 workers) + PIL
   ``Resize(224)`` / ``ToTensor`` / ``Normalize``, the same body in eval mode, fp32.

Prints images/second for each and the ratios the issue asks for (project / raw bf16 and
project / best raw; project / torchvision).

Run: ``TLCORE_DATA_DIR=../shared/datasets python benchmarks/feature_pass.py [--images 512]``
(alone: two torch processes on 2 cores slow each other).

Last measured (2026-12-04, 2-core AMD EPYC VM without AVX512-BF16, torch 2.14.1, 512 images):
raw fp32 25.1 images/s, raw bf16 2.8 (bf16 emulated: the project stays in fp32 here), project
26.8 (1.07x the best raw rate: the pass is at the body's limit), torchvision pipeline 23.1
(project / torchvision 1.16: at 224 px on this CPU the body's arithmetic is nearly all of the
time, so no pipeline can be much faster than the body allows).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlcore.data import load_dataset  # noqa: E402
from tlcore.device import autocast, autocast_dtype, cpu_has_fast_bf16  # noqa: E402
from tlcore.models import create_backbone, freeze  # noqa: E402
from tlcore.events import StopToken  # noqa: E402
from tlcore.paths import data_dir  # noqa: E402
from tlcore.training.feature_cache import compute_features  # noqa: E402

BATCH = 64


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
        compute_features(model, images[:n], torch.device("cpu"), batch_size=BATCH, amp=dtype, stop=StopToken())
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    args = ap.parse_args()
    n = args.images
    zip_path = data_dir() / "cifar10-mini.zip"
    data = load_dataset(str(zip_path))
    images = data.test.images[:n]
    model = freeze(create_backbone("efficientnet_lite0", weights="imagenet", num_classes=10), preset="linear-probe")
    model = model.eval().to(memory_format=torch.channels_last)
    chosen = autocast_dtype(torch.device("cpu"), "auto")
    rates = {"raw fp32": rate(raw(model, None), n), "raw bf16": rate(raw(model, torch.bfloat16), n),
             f"project ({'bf16' if chosen else 'fp32'})": rate(project(model, images, chosen), n)}
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(zip_path) as z:
        members = [m for m in z.namelist() if "/test/" in m and m.lower().endswith(".jpg")]
        z.extractall(tmp, members)
        rates["torchvision ImageFolder + DataLoader (fp32)"] = rate(
            torchvision_pipeline(model, next(Path(tmp).glob("*/test"))), n)
    print(f"EfficientNet-Lite0 body, 224 px, batch {BATCH}, {n} images, {torch.get_num_threads()} threads, "
          f"fast bf16 on this CPU: {cpu_has_fast_bf16()}")
    for k, v in rates.items():
        print(f"  {k:45s} {v:7.1f} images/s")
    mine = rates[next(k for k in rates if k.startswith("project"))]
    print(f"project / raw bf16: {mine / rates['raw bf16']:.2f}; project / best raw: "
          f"{mine / max(rates['raw bf16'], rates['raw fp32']):.2f}; project / torchvision: "
          f"{mine / rates['torchvision ImageFolder + DataLoader (fp32)']:.2f}")


if __name__ == "__main__":
    main()
