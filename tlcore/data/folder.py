"""Your own images: a folder or a .zip in ImageFolder layout (one sub-folder per class).

Layouts understood, optionally under one top folder (as ``cifar10-mini.zip`` has):
``<class>/<file>`` (split here, seeded and stratified) or ``train/<class>/<file>`` with
``val/`` and/or ``test/`` beside it. An ``unlabelled/`` (or ``unlabeled/``) folder beside the class
folders, or inside ``train/``, holds images nobody labelled: never a class, they become the
data's unlabelled pool (:mod:`tlcore.data.unlabelled`). A held-out folder that is alone (only ``val/`` or only
``test/``) becomes the test split and validation is carved from train, so the reported test
accuracy is never the one that chose the model.

Photos are decoded once to one square size (``image_size``; by default the typical image's
shorter side, capped at 224). Files that are not images, are corrupt, or are bombs are
skipped and counted by reason. A folder whose decoded images would not fit under the memory cap
is indexed instead and streamed from its files batch by batch (:mod:`tlcore.data.stream`).
"""
from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from ..config import MAX_IMAGE_SIZE
from ..errors import TLCoreError
from .base import UNKNOWN, ImageData, Split, finish, stratified_split
from .images import IMAGE_EXTENSIONS, ImageRejected, decode_image, image_side
from .safezip import ZipLimits, open_zip
from .stream import UNREADABLE, FileReader, ImageFiles, ZipReader, human, memory_cap, streamed

MAX_AUTO_SIZE = 224
# The size images are decoded to, not a model's input (RunConfig.image_size, from 16): a folder of
# 8x8 digits may stay 8x8 on disk and in memory; the loader resizes for the model.
MIN_SIZE = 8
MAX_SIZE = MAX_IMAGE_SIZE
MAX_CLASSES = 1000  # ImageNet's count; more is a mistaken layout (one folder per image?) more often than not
HELD_OUT = ("val", "test")
UNLABELLED = ("unlabelled", "unlabeled")  # a folder of images nobody labelled: never a class (tlcore.data.unlabelled)
_JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")
# A folder on the user's own disk is not an upload: it may hold millions of images (streamed).
FOLDER_LIMITS = ZipLimits(max_files=20_000_000, max_total_bytes=2**62)


def is_unlabelled_folder(name: str) -> bool:
    return name.lower() in UNLABELLED


def _iter_folder(root: Path, limits: ZipLimits) -> Iterator[tuple[str, str | None, int]]:
    """(relative posix path, ref or None, bytes) for regular files; links are never followed."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            rel = p.relative_to(root).as_posix()
            if p.is_symlink() or not p.is_file():
                yield rel, None, 0
                continue
            count += 1
            if count > limits.max_files:
                raise TLCoreError(f"Refused {root.name}: more than {limits.max_files:,} files.")
            size = p.stat().st_size
            yield rel, (rel if size <= limits.max_member_bytes else None), size


def _index(path: Path, limits: ZipLimits | None) -> tuple[object, list[tuple[str, object, int]]]:
    """(a reader of one file's bytes by its ref, [(relative path, ref or None, bytes)]): nothing
    is read yet, so a folder bigger than memory can be indexed."""
    if path.is_dir():
        return FileReader(path), list(_iter_folder(path, limits or FOLDER_LIMITS))
    zf, infos = open_zip(path, limits or ZipLimits())
    zf.close()
    return ZipReader(path), [(i.filename.replace("\\", "/"), i, i.file_size) for i in infos]


def _parts(rel: str) -> tuple[str, ...] | None:
    parts = PurePosixPath(rel).parts
    if any(p in _JUNK or p.startswith(".") for p in parts):
        return None
    return parts


def _layout(paths: list[tuple[str, ...]]) -> tuple[int, bool]:
    """(how many leading wrapper folders to drop, whether train/ val/ test/ splits are present)."""
    drop = 0
    while True:  # wrapping folders, like cifar10-mini/ (or a zip of a folder inside a folder)
        tops = {p[drop] for p in paths}
        if len(tops) != 1 or not all(len(p) > drop + 2 for p in paths) or tops == {"train"}:
            break
        drop += 1
    firsts = {p[drop] for p in paths if len(p) > drop + 1}
    split = "train" in firsts and bool(firsts & set(HELD_OUT))
    return drop, split


def load_image_folder(
    path: str | os.PathLike,
    *,
    image_size: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    samples_per_class: int | None = None,
    seed: int = 0,
    limits: ZipLimits | None = None,
    **_,
) -> ImageData:
    """Load an ImageFolder directory or zip into an :class:`ImageData`.

    Args:
        image_size: square side to decode to; None picks the median shorter side of the
            images (at most 224), so 32x32 CIFAR stays 32 and photos become 224.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise TLCoreError(f"No such dataset, folder or zip: {str(path)!r}.")
    if image_size is not None and not (isinstance(image_size, int) and MIN_SIZE <= image_size <= MAX_SIZE):
        raise TLCoreError(f"image_size must be a whole number from {MIN_SIZE} to {MAX_SIZE}, got {image_size!r}.")
    skipped: Counter[str] = Counter()
    read, entries = _index(path, limits)
    groups, has_splits = _group(_image_files(path, entries, skipped), skipped)
    classes = _classes(groups, path.name, has_splits)
    refs = [r for g in groups.values() for _, r in g]
    probe = None if image_size else _probe(refs, read)  # a few images read whole: their sizes
    size = image_size or _auto_size(probe)
    index = {c: i for i, c in enumerate(classes)} | {None: UNKNOWN}
    note = _streaming_note(path.name, len(refs), size, sum(n for _, r, n in entries if r is not None))
    if note:
        gray = _probed_gray(_probe(refs, read) if probe is None else probe)
        decoded = {s: _stream_all(g, index, read, size, gray) for s, g in groups.items()}
    else:
        decoded = {s: _decode_all(g, size, index, skipped, read) for s, g in groups.items()}
    pool = decoded.pop("unlabelled")
    train, val, test = _splits(decoded, has_splits, test_fraction, seed, path.name, skipped)
    name = path.name[:-4] if path.suffix.lower() == ".zip" else path.name
    return finish(name, classes, train, test, val=val, val_fraction=val_fraction,
                  samples_per_class=samples_per_class, seed=seed, hflip=True, skipped=dict(skipped),
                  source=str(path), split_note=split_note(decoded, has_splits, test_fraction, val_fraction),
                  note=note, unlabelled=_pool(pool, train.images.shape[1]))


def _pool(decoded: tuple, channels: int) -> Split | None:
    """The unlabelled folder's images with the labelled ones' channels (None: no such folder)."""
    x, y, _ = decoded
    if not len(y):
        return None
    if channels == 1:
        x = _first_channel(x) if streamed(x) else gray(x)
    return Split(x, y)


def gray(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> (N, 1, H, W), the channels' mean: a colour image in a gray set."""
    return x.float().mean(1, keepdim=True).round().to(torch.uint8)


def _streaming_note(name: str, count: int, size: int, file_bytes: int) -> str:
    """Why the images will be streamed, or "" when they fit in memory. Decoding in memory holds
    the files' bytes and the decoded images twice (a list of arrays, then one tensor) at its peak."""
    need = file_bytes + 2 * count * 3 * size * size
    cap, origin = memory_cap()
    if need <= cap:
        return ""
    return (f"{name}: {count:,} images at {size}x{size} would take about {human(need)} to load, over the "
            f"memory cap of {human(cap)} ({origin}), so they are read from their files batch by batch "
            f"(streaming) instead of held in memory.")


def split_note(decoded: dict, has_splits: bool, test_fraction: float, val_fraction: float) -> str:
    """Which folder became which split, in words: a lone val/ folder silently scoring the model
    as its test split surprised users."""
    have = [s for s in HELD_OUT if len(decoded[s][1])] if has_splits else []
    carved = f"validation (to pick the best epoch) is {val_fraction:.0%} of train/, set aside"
    if have == ["val", "test"]:
        return "Your val/ folder is the validation split and test/ the test split."
    if have:
        return (f"Your {have[0]}/ folder is the **test split** (the final score is measured on it); "
                f"{carved}.")
    return (f"No val/ or test/ folder: the test split is {test_fraction:.0%} of the images, and {carved} "
            f"(the same images for the same seed).")


def _image_files(path: Path, entries: list, skipped: Counter) -> list[tuple[tuple[str, ...], object]]:
    """(path parts, ref) of every image inside a class folder; the rest counted in ``skipped``."""
    files = []
    for rel, data, _ in entries:
        parts = _parts(rel)
        if parts is None:
            continue
        ext = PurePosixPath(rel).suffix.lower()
        if data is None:
            skipped["unreadable, too large or a link"] += 1
        elif ext in (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar"):
            skipped["nested archives (not opened)"] += 1
        elif ext not in IMAGE_EXTENSIONS:
            skipped["not images"] += 1
        elif len(parts) < 2:
            skipped["outside a class folder"] += 1
        else:
            files.append((parts, data))
    if not files:
        extra = f" ({_skipped_text(skipped)})" if skipped else ""
        raise TLCoreError(
            f"No images in class folders found in {path.name}{extra}. Expected <class>/<image> "
            f"or train/<class>/<image> with val/ or test/."
        )
    return files


def _group(files, skipped: Counter) -> tuple[dict[str, list[tuple[str, object]]], bool]:
    """Images by split (train, val, test) as (class, ref), and whether the folder had splits."""
    drop, has_splits = _layout([p for p, _ in files])
    groups: dict[str, list[tuple[str, bytes]]] = {s: [] for s in ("train", *HELD_OUT, "unlabelled")}
    for parts, data in files:
        parts = parts[drop:]
        if is_unlabelled_folder(parts[0]) or (has_splits and parts[0] == "train" and len(parts) > 2
                                               and is_unlabelled_folder(parts[1])):
            groups["unlabelled"].append((None, data))  # no class: tlcore.data.unlabelled
        elif has_splits:
            if parts[0] not in groups or len(parts) < 3:
                skipped["outside train/, val/ and test/"] += 1
                continue
            groups[parts[0]].append((parts[1], data))
        elif len(parts) < 2:
            skipped["outside a class folder"] += 1
        else:
            groups["train"].append((parts[0], data))
    return groups, has_splits


def _classes(groups: dict[str, list[tuple[str, bytes]]], name: str, has_splits: bool) -> list[str]:
    """The training split's class folders, sorted; held-out splits may not add any."""
    classes = sorted({c for c, _ in groups["train"]})
    if len(classes) > MAX_CLASSES:
        raise TLCoreError(f"{name} has {len(classes):,} class folders; at most {MAX_CLASSES:,} are supported.")
    if len(classes) < 2:
        raise TLCoreError(
            f"{name} has {len(classes)} class folder(s) with images{' in train/' if has_splits else ''}; "
            f"a classifier needs at least 2."
        )
    for s in HELD_OUT:
        extra = sorted({c for c, _ in groups[s]} - set(classes))
        if extra:
            raise TLCoreError(f"{name}: {s}/ has classes that train/ lacks: {', '.join(extra)}.")
    return classes


def _splits(decoded: dict, has_splits: bool, test_fraction: float, seed: int, name: str,
            skipped: Counter) -> tuple[Split, Split | None, Split]:
    """(train, val or None, test): a held-out folder alone is the test set; none, a seeded cut."""
    gray = all(decoded[s][2] for s in decoded if len(decoded[s][1]))

    def split(s: str) -> Split:
        x, y, _ = decoded[s]
        return Split(_first_channel(x) if gray else x, y)

    train = split("train")
    if len(train) == 0:
        raise TLCoreError(f"No readable training images in {name} ({_skipped_text(skipped)}).")
    val = split("val") if len(decoded["val"][1]) and len(decoded["test"][1]) else None
    held = "test" if len(decoded["test"][1]) else "val"
    if has_splits and len(decoded[held][1]):
        return train, val, split(held)
    keep, take = stratified_split(train.labels, test_fraction, seed)
    return train.subset(keep), val, train.subset(take)


def _probe(refs: list, read, probe: int = 64) -> list[bytes]:
    """The bytes of up to ``probe`` images spread over the folder (unreadable ones left out)."""
    out = []
    for ref in refs[::max(1, len(refs) // probe)][:probe]:
        try:
            out.append(read(ref))
        except UNREADABLE:
            continue
    return out


def _auto_size(blobs: list[bytes]) -> int:
    sides = [s for s in (image_side(b) for b in blobs) if s]
    if not sides:
        return MAX_AUTO_SIZE
    return int(min(MAX_AUTO_SIZE, max(MIN_SIZE, statistics.median(sides))))


DECODE_CHUNK = 64  # images per task handed to the decoding threads


def _decode_all(items: list[tuple[str, object]], size: int, index: dict[str, int], skipped: Counter,
                read) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Read and decode in threads (PIL releases the GIL while decoding)."""
    def one(item):
        try:
            return decode_image(read(item[1]), size), index[item[0]]
        except ImageRejected as e:
            return e.reason, None
        except UNREADABLE:
            return "unreadable, too large or a link", None

    def chunk(start: int):
        return [one(item) for item in items[start:start + DECODE_CHUNK]]

    arrays, labels, gray = [], [], True
    # Chunks, not images, go to the pool: a thread pool ignores map's chunksize, and a future per
    # image cost more than the decoding itself for small images (CIFAR's 12,000: 2.4 s of 3.5 s).
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        done = (r for rs in pool.map(chunk, range(0, len(items), DECODE_CHUNK)) for r in rs)
        for res, label in done:
            if label is None:
                skipped[res] += 1
                continue
            arrays.append(res[0])
            labels.append(label)
            gray &= res[1]
    if not arrays:
        return torch.zeros(0, 3, size, size, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64), True
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels, dtype=torch.int64), gray


def _probed_gray(probe: list[bytes]) -> bool:
    """A streamed folder is gray when the images probed from it all are (decoding each would read it all)."""
    gray = True
    for blob in probe:
        try:
            gray &= decode_image(blob, MIN_SIZE)[1]
        except ImageRejected:
            continue
    return gray


def _stream_all(items: list[tuple[str, object]], index: dict[str, int], read, size: int,
                gray: bool) -> tuple[ImageFiles, torch.Tensor, bool]:
    """The images as files, decoded per batch later."""
    files = ImageFiles(read, [ref for _, ref in items], size, 3)
    return files, torch.tensor([index[c] for c, _ in items], dtype=torch.int64), gray


def _first_channel(x):
    """A grayscale folder's images, one channel (decoding gives three equal ones)."""
    return ImageFiles(x.read, x.refs, x.size, 1) if isinstance(x, ImageFiles) else x[:, :1]


def _skipped_text(skipped: Counter | dict) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in skipped.items()) or "nothing usable"


def load_labelled(path: str | os.PathLike, classes: list[str], *, image_size: int | None = None,
                  limits: ZipLimits | None = None) -> ImageData:
    """A labelled set to evaluate a run on, as an ImageData whose test split holds it.

    A folder or zip with only ``test/`` (or ``val/``), or with no split folders at all, is used
    whole: every image counts. One with ``train/`` and a held-out folder gives its held-out
    images (its training images are not a fair test). Its class folders must be the run's
    ``classes``; labels are the run's indices.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise TLCoreError(f"No such folder or zip: {str(path)!r}.")
    skipped: Counter[str] = Counter()
    read, entries = _index(path, limits)
    groups, has_splits = _group(_image_files(path, entries, skipped), skipped)
    held = [s for s in ("test", "val") if groups[s]]
    items = groups[held[0]] if has_splits and held else [i for s in ("train", *HELD_OUT) for i in groups[s]]
    found = sorted({c for c, _ in items})
    if found != sorted(classes):
        missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
        raise TLCoreError(f"The classes of {path.name} do not match the run's: "
                          + "; ".join(part for part in (f"missing {', '.join(missing)}" if missing else "",
                                                        f"not known to the run: {', '.join(extra)}" if extra else "")
                                      if part) + f". The run knows {', '.join(classes)}.")
    size = max(MIN_SIZE, image_size) if image_size else _auto_size(_probe([r for _, r in items], read))
    x, y, gray = _decode_all(items, size, {c: i for i, c in enumerate(classes)}, skipped, read)
    if len(y) == 0:
        raise TLCoreError(f"No readable images in {path.name} ({_skipped_text(skipped)}).")
    test = Split(x[:, :1] if gray else x, y)
    none = test.subset(torch.zeros(0, dtype=torch.long))
    name = path.name[:-4] if path.suffix.lower() == ".zip" else path.name
    what = f"its {held[0]}/ folder" if has_splits and held else "all of its images"
    return ImageData(name, list(classes), none, none, test, hflip=True, skipped=dict(skipped), source=str(path),
                     split_note=f"Evaluated on {what} ({len(y):,}).")
