"""Shared fixtures: the offline data folder, a private cache, and tiny image folders made on the fly."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(min(2, os.cpu_count() or 1))

DATA_DIR = os.environ.get("TLCORE_DATA_DIR")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test writes caches to its own temp folder, never to the user's or the data folder."""
    monkeypatch.setenv("TLCORE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def shared_data() -> Path:
    """The offline datasets folder ($TLCORE_DATA_DIR); tests that need it skip without it."""
    if not DATA_DIR or not Path(DATA_DIR, "MNIST", "raw").is_dir():
        pytest.skip("TLCORE_DATA_DIR is not set to a folder with MNIST/raw (CI sets it to ../shared/datasets)")
    return Path(DATA_DIR)


@pytest.fixture
def cifar_zip(shared_data) -> Path:
    p = shared_data / "cifar10-mini.zip"
    if not p.is_file():
        pytest.skip(f"{p} is missing")
    return p


def png_bytes(arr: np.ndarray, fmt: str = "PNG", **save) -> bytes:
    """Encode an array; PIL picks the mode from its shape and dtype (uint16 -> I;16, 4 channels -> RGBA)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **save)
    return buf.getvalue()


def class_image(label: int, size: int = 16, rgb: bool = True, seed: int = 0) -> np.ndarray:
    """A distinguishable picture per class: a bright square whose position encodes the label."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 40, (size, size, 3) if rgb else (size, size), dtype=np.uint8)
    o = (label * 3) % (size - 4)
    a[o:o + 4, o:o + 4] = 250
    return a


def write_folder(root: Path, layout: dict[str, int], size: int = 16, rgb: bool = True) -> Path:
    """Write ``{"train/cat": 5, "test/cat": 2, ...}`` as PNG files under ``root``."""
    for i, (rel, n) in enumerate(sorted(layout.items())):
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        for j in range(n):
            (d / f"{j:03d}.png").write_bytes(png_bytes(class_image(i, size, rgb, seed=j)))
    return root


def zip_folder(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder.parent).as_posix())
    return out
