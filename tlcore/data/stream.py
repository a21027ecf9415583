"""Images read from their files batch by batch: the path for folders bigger than memory.

The resident path decodes a whole folder into one uint8 tensor (airbench's recipe, see
:mod:`tlcore.data.loader`). A folder whose decoded images would not fit under the memory cap is
instead kept as an index, a path and a label per image, and each batch is decoded when the loader
asks for it, by a pool of threads (PIL releases the GIL while decoding) a few batches ahead of the
step. :class:`ImageFiles` stands where the uint8 tensor would (``Split.images``): indexing it
decodes just those images, so the loader's seeded order, its per-rank shards, augmentation,
evaluation and the feature cache work unchanged, and give the same numbers.

A file that fails to decode mid-run (truncated after it was indexed) becomes a black image;
stopping a long run for one file would be worse.
"""
from __future__ import annotations

import os
import re
import threading
import zipfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..errors import TLCoreError
from .images import ImageRejected, decode_image

MEMORY_CAP_ENV = "TLCORE_MEMORY_CAP"
# Of the memory free when a folder is loaded: the rest is for the model, its batches and the app.
CAP_FRACTION = 0.5
PREFETCH = 3  # batches decoded ahead of the step
# What reading a file that was indexed may raise: a bad CRC, a vanished or truncated file, a zip
# member in a compression zipfile cannot inflate.
UNREADABLE = (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError)
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3}


def parse_bytes(text: str) -> int:
    """"200MB", "1.5G", "4096" -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMG]?B?)\s*", str(text).upper())
    if not m or float(m.group(1)) <= 0:
        raise TLCoreError(f"{MEMORY_CAP_ENV} must be a size such as 500MB or 2GB, got {text!r}.")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def available_memory() -> int:
    """Bytes of memory free now (Linux's MemAvailable; elsewhere the free pages; 4 GB if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


def memory_cap() -> tuple[int, str]:
    """(bytes a dataset may take in memory, where that figure came from)."""
    if os.environ.get(MEMORY_CAP_ENV):
        return parse_bytes(os.environ[MEMORY_CAP_ENV]), f"${MEMORY_CAP_ENV}"
    return int(available_memory() * CAP_FRACTION), f"{CAP_FRACTION:.0%} of the free memory"


def human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GB"


class FileReader:
    """Bytes of files under a folder, by relative path."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def __call__(self, ref: str) -> bytes:
        return (self.root / ref).read_bytes()


class ZipReader:
    """Bytes of a zip's members; one open handle per thread, so decoding threads never share a file position."""

    def __init__(self, path: Path):
        self.path, self.local = Path(path), threading.local()

    def __call__(self, ref: zipfile.ZipInfo) -> bytes:
        zf = getattr(self.local, "zf", None)
        if zf is None:
            zf = self.local.zf = zipfile.ZipFile(self.path)
        with zf.open(ref) as f:
            data = f.read(ref.file_size + 1)
        if len(data) != ref.file_size:  # a lying header cannot expand past what was checked
            raise OSError("member size differs from its header")
        return data

    def __getstate__(self):  # a thread's handle does not travel
        return {"path": self.path}

    def __setstate__(self, state):
        self.path, self.local = state["path"], threading.local()


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 1)), thread_name_prefix="decode")
    return _POOL


class ImageFiles:
    """A split's images as files, decoded to uint8 (N, C, size, size) when indexed.

    Args:
        read: bytes of one file from its ref (:class:`FileReader` or :class:`ZipReader`).
        refs: one ref per image, in the split's order.
        size: the square side images are decoded to.
        channels: 1 keeps only the first channel (a grayscale folder), 3 keeps RGB.
    """

    dtype, ndim, device = torch.uint8, 4, torch.device("cpu")

    def __init__(self, read, refs: list, size: int, channels: int):
        self.read, self.refs, self.size, self.channels = read, list(refs), size, channels

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.refs), self.channels, self.size, self.size))

    def __len__(self) -> int:
        return len(self.refs)

    def to(self, *args, **kwargs) -> "ImageFiles":
        """Stays files: whoever indexes moves the decoded batch (as the loader does)."""
        return self

    def _positions(self, idx) -> list[int]:
        if isinstance(idx, slice):
            return list(range(len(self.refs))[idx])  # a range slices lazily: O(batch), not O(split)
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu()
            return torch.nonzero(idx).flatten().tolist() if idx.dtype == torch.bool else idx.flatten().tolist()
        if isinstance(idx, (int, np.integer)):
            return [int(idx)]
        return [int(i) for i in idx]

    def subset(self, idx) -> "ImageFiles":
        """These images, still as files."""
        return ImageFiles(self.read, [self.refs[i] for i in self._positions(idx)], self.size, self.channels)

    def _decode(self, ref) -> np.ndarray:
        try:
            return decode_image(self.read(ref), self.size)[0]
        except (ImageRejected, *UNREADABLE):
            return np.zeros((self.size, self.size, 3), np.uint8)

    def __getitem__(self, idx) -> torch.Tensor:
        pos = self._positions(idx)
        arrays = list(_pool().map(self._decode, [self.refs[i] for i in pos]))
        if not arrays:
            return torch.zeros(0, self.channels, self.size, self.size, dtype=torch.uint8)
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        return x[:, :self.channels].contiguous()


def take(images, idx):
    """``images[idx]``, except that streamed images stay files (indexing them would decode)."""
    return images.subset(idx) if streamed(images) else images[idx]


def streamed(images) -> bool:
    return isinstance(images, ImageFiles)


def prefetched(fetch, keys, ahead: int = PREFETCH):
    """``fetch(key)`` for each key in order, the next ``ahead`` computed in a background thread
    while the caller works on the current one."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as ex:
        pending: deque = deque()
        keys = iter(keys)
        for key in keys:
            pending.append(ex.submit(fetch, key))
            if len(pending) > ahead:
                break
        while pending:
            yield pending.popleft().result()
            nxt = next(keys, None)
            if nxt is not None:
                pending.append(ex.submit(fetch, nxt))


def chunks(images, batch_size: int):
    """``images[i:i + batch_size]`` in order: slices of a tensor, or decoded ahead when streamed."""
    starts = range(0, len(images), batch_size)
    if not streamed(images):
        return (images[i:i + batch_size] for i in starts)
    return prefetched(lambda i: images[i:i + batch_size], starts)
