"""Reading an untrusted zip: every member is checked before a single byte is decompressed.

We never extract to disk. Members are read into memory one by one, so a hostile path
(absolute, ``..``, a link) cannot write anywhere; such a zip is refused outright all the
same, because it is never an honest dataset. Size limits stop zip bombs: the total expanded
size, the number of files and the compression ratio are checked from the central directory,
and reads are capped at the declared size (zipfile stops there and checks the CRC), so a
lying header cannot expand past it.
"""
from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import TLCoreError

# Limits sized for classroom datasets: cifar10-mini is 12,000 files and 11 MB expanded.
MAX_FILES = 60_000
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_MEMBER_BYTES = 256 * 1024**2
# Photos barely compress; a member that shrank more than 100x and is big is a bomb.
MAX_RATIO = 100
RATIO_MIN_BYTES = 1024**2


@dataclass(frozen=True)
class ZipLimits:
    max_files: int = MAX_FILES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_member_bytes: int = MAX_MEMBER_BYTES
    max_ratio: float = MAX_RATIO


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB"


def _check_name(name: str) -> None:
    """Refuse names that would point outside an extraction folder on any OS."""
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        raise TLCoreError(f"Refused the zip: it contains an absolute path {name!r}.")
    if ".." in PurePosixPath(n).parts:
        raise TLCoreError(f"Refused the zip: it contains a path that leaves its folder {name!r}.")
    if "\x00" in n:
        raise TLCoreError(f"Refused the zip: it contains a file name with a NUL byte {name!r}.")


def check_members(zf: zipfile.ZipFile, source: str, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """Validate the central directory; return the regular-file members."""
    infos = zf.infolist()
    if any(not i.filename for i in infos):  # zipfile's is_dir() itself fails on one
        raise TLCoreError(f"Refused {source}: it contains a member with no name (a damaged zip?).")
    files = [i for i in infos if not i.is_dir()]
    if len(files) > limits.max_files:
        raise TLCoreError(
            f"Refused {source}: {len(files):,} files is over the limit of {limits.max_files:,}."
        )
    total = 0
    for info in infos:
        _check_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise TLCoreError(f"Refused the zip: it contains a link {info.filename!r}.")
        if info.flag_bits & 0x1:
            raise TLCoreError(f"Refused the zip: {info.filename!r} is encrypted.")
        if info.is_dir():
            continue
        if info.file_size > limits.max_member_bytes:
            raise TLCoreError(
                f"Refused the zip: {info.filename!r} expands to {_mb(info.file_size)}, over the "
                f"{_mb(limits.max_member_bytes)} limit for one file."
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_MIN_BYTES and ratio > limits.max_ratio:
            raise TLCoreError(
                f"Refused the zip: {info.filename!r} expands {ratio:,.0f}x (a zip bomb?); "
                f"the limit is {limits.max_ratio:,.0f}x."
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise TLCoreError(
                f"Refused {source}: it expands to more than {_mb(limits.max_total_bytes)}."
            )
    return files


def open_zip(path: str | Path, limits: ZipLimits = ZipLimits()) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """Open and validate; raise :class:`TLCoreError` for a broken or hostile archive."""
    source = Path(path).name
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise TLCoreError(f"No such file: {path}") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise TLCoreError(f"{source} is not a valid zip file ({e}).") from None
    try:
        return zf, check_members(zf, source, limits)
    except BaseException:
        zf.close()
        raise
