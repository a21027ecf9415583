"""Shared fixtures and helpers: the offline data folder, a private cache, tiny image folders and
zips made on the fly, drawn digits, and the command line run as a user runs it."""
from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

torch.set_num_threads(min(2, os.cpu_count() or 1))

DATA_DIR = os.environ.get("TLCORE_DATA_DIR")
ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "assets" / "models" / "lenet5-mnist"


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


# -- zips, honest and hostile ---------------------------------------------------------------
PNG = png_bytes(class_image(0, 16))


def ok_members() -> list[tuple[str, bytes]]:
    return [(f"{c}/{i}.png", png_bytes(class_image(k, 16, seed=i))) for k, c in enumerate("ab") for i in range(3)]


def write_zip(path: Path, members, *, compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for m in members:
            if isinstance(m, zipfile.ZipInfo):
                z.writestr(m, m.comment)  # ZipInfo members carry their data in .comment
                m.comment = b""
            else:
                z.writestr(m[0], m[1])
    return path


def symlink_member(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.comment = target.encode()
    return info


def zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/0.png", PNG)
        z.writestr("b/0.png", PNG)
        z.writestr("a/huge.bmp", b"\0" * (50 * 1024**2))  # 50 MB of zeros deflates ~1000x
    return path


def encrypted_zip(path: Path) -> Path:
    write_zip(path, ok_members())
    data = bytearray(path.read_bytes())
    # Set the "encrypted" flag bit in the first central-directory header (offset 8 is flags).
    cd = data.rfind(b"PK\x01\x02", 0, data.rfind(b"PK\x05\x06"))
    first_cd = data.find(b"PK\x01\x02")
    data[first_cd + 8] |= 1
    assert cd >= first_cd
    path.write_bytes(bytes(data))
    return path


# -- drawings and the command line --------------------------------------------------------------
def digit_canvas(text: str, *, size=400, box=(100, 60, 300, 340), ink=0, paper=255, mode="L", width=22):
    """A handwritten-style digit drawn with strokes (thick lines) at ``box`` on a canvas."""
    img = Image.new(mode, (size, size), paper)
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    strokes = {
        "1": [[(x0 + w * 0.5, y0), (x0 + w * 0.5, y1)]],
        "7": [[(x0, y0), (x1, y0), (x0 + w * 0.35, y1)]],
        "0": [[(x0 + w * 0.5, y0), (x1, y0 + h * 0.3), (x1, y0 + h * 0.7), (x0 + w * 0.5, y1), (x0, y0 + h * 0.7),
               (x0, y0 + h * 0.3), (x0 + w * 0.5, y0)]],
        "4": [[(x0 + w * 0.7, y1), (x0 + w * 0.7, y0), (x0, y0 + h * 0.65), (x1, y0 + h * 0.65)]],
    }[text]
    for s in strokes:
        d.line(s, fill=ink, width=width, joint="curve")
    return img


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "tlcore", *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=300)
