"""Files and folders that appear whole or not at all, even if the process is killed mid-write.

Everything is written under a hidden temporary name beside its final one
(``.<name>.tmp-<pid>-<random>``), flushed to disk (each file, then the folder), and renamed
into place: a rename within one folder is atomic on POSIX filesystems, so a reader sees the old
state or the new, never a half of either. A process killed before the rename leaves only a
hidden temporary, which readers skip (:func:`is_temporary`) and :func:`sweep` removes once its
writer is gone.

When the final folder already exists it is replaced only if it is empty or a tlcore run (a
``config.json`` inside): anything else is refused rather than deleted. The old folder is
renamed aside first, then the new one in, then the old one deleted; for that instant neither
is at the final name (POSIX has no atomic swap of two folders), and never a half-written one; if
the writer is killed right then, :func:`sweep` puts the old folder back.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterator

from ..errors import TLCoreError
from .folder import CONFIG_FILE

# .<name>.tmp-<pid>-<hex> (being written) or .<name>.old-<pid>-<hex> (being replaced)
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]{8}(?P<suffix>\.[^.]*)?$")
RUN_MARK = CONFIG_FILE  # a folder holding one is a run: a new save of the same name may replace it


def _sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


def is_temporary(path: str | Path) -> bool:
    """Whether ``path`` is a writer's temporary (or a replaced folder on its way out): never a result."""
    return _TEMP.match(Path(path).name) is not None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Every file under ``folder`` on disk, then every folder's entries (deepest first)."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for f in files:
            _fsync(Path(root) / f)
        _fsync(Path(root))


def discard(path: Path) -> None:
    """Remove a file or folder if it is there (a link, not what it points to)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path (same folder, same suffix) to write ``path``'s content to; on
    success it is fsynced and renamed over ``path``; on any error (or a kill) ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    _fsync(path.parent)


def write_text(path: str | Path, text: str) -> Path:
    """``path.write_text(text)``, atomically."""
    return write_bytes(path, text.encode())


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``path.write_bytes(data)``, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_folder(path: str | Path, *, mark: str = RUN_MARK) -> Iterator[Path]:
    """Yield an empty temporary folder to fill; on success it becomes ``path`` in one rename.

    An existing ``path`` is replaced if it is empty or holds ``mark`` (it is what this writer
    writes: by default a run); otherwise TLCoreError, before anything is written. On any error
    (or a kill) ``path`` stays as it was.
    """
    path = Path(path)
    check_target(path, mark)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep(path.parent)  # what an earlier, killed writer left here
    tmp = _sibling(path, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
        _publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    _fsync(path.parent)


def check_target(path: str | Path, mark: str = RUN_MARK) -> None:
    """TLCoreError unless :func:`atomic_folder` may write ``path``: absent, empty, or holding ``mark``.
    (Trainers ask before training, not after.)"""
    path = Path(path)
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        raise TLCoreError(f"{path} exists and is not a folder: choose another name to save into.")
    if any(path.iterdir()) and not (path / mark).is_file():
        raise TLCoreError(f"{path} exists and holds files that are not what is saved here: choose another folder "
                          f"(nothing there was changed).")


def _publish(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``, an existing one first moved aside (and then deleted)."""
    try:
        os.rename(tmp, path)
        return
    except OSError:
        if not path.is_dir():
            raise
    old = _sibling(path, "old")
    os.rename(path, old)
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process: alive
        pass
    return True


def sweep(folder: str | Path) -> list[Path]:
    """Clear what writers that no longer run left in ``folder``; returns what it found.

    A half-written temporary is deleted. A folder that was being replaced goes back to its name
    when the writer was killed between moving it aside and renaming its successor in (so the
    earlier run is not lost); otherwise it is deleted.
    """
    folder = Path(folder)
    found = []
    with contextlib.suppress(OSError):
        for p in folder.iterdir():
            m = _TEMP.match(p.name)
            if not m or _alive(int(m["pid"])):
                continue
            found.append(p)
            final = folder / m["name"]
            if m["kind"] == "old" and not os.path.lexists(final):
                with contextlib.suppress(OSError):
                    os.rename(p, final)
                    continue
            discard(p)
    return found
