"""Session folders a killed server left in the temp folder, removed by the next server.

A session's folder goes when its tab closes or the server stops. A server that is killed
(SIGKILL, out of memory, a power cut) cleans nothing up, and each of its sessions' folders would
stay in the temp folder for good, with the uploads, runs and exports in it. So each server holds
an exclusive lock on a small file, ``tlcore-owner-<tag>.lock``, for its whole life and puts its
tag in the names of its session folders and stop files; a server starting later removes those of
every owner whose lock it can take. The kernel releases a dead process's locks, so unlike a pid
(reused, and the same in every container start) this never takes a live server for a dead one.

Where there are no POSIX locks (Windows) folders get no tag and nothing is swept.
"""
from __future__ import annotations

import atexit
import os
import secrets
import tempfile
from pathlib import Path

from ..api import discard

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

SESSION_PREFIX = "tlcore-session-"
OWNER_PREFIX = "tlcore-owner-"
STOPS_NAME = "tlcore-stops"  # stop files (session.STOPS): "<tag>-<hex>"

_owners: dict[Path, "Owner"] = {}  # one per temp folder this process has used (tests change it)


class Owner:
    """This process's claim on its session folders in one temp folder: a locked file, held until exit."""

    def __init__(self, root: Path):
        self.root, self.tag = root, secrets.token_hex(4)
        self.lock = root / f"{OWNER_PREFIX}{self.tag}.lock"
        # Locked before it has its name: a sweeper never sees this owner's file unlocked.
        temp = root / f".{self.lock.name}.tmp"
        self._fd = os.open(temp, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(temp, self.lock)
        self._pid = os.getpid()
        atexit.register(self.release)

    def release(self) -> None:
        """At a normal exit, what this owner has left goes with its lock (sessions' folders go at
        exit anyway). Not in a forked child: the folders are its parent's."""
        if os.getpid() == self._pid:
            _remove(self.root, self.tag)

    def state_dict(self) -> dict:
        return {"root": str(self.root), "tag": self.tag, "lock": str(self.lock)}


def owner() -> Owner | None:
    """This process's owner in the current temp folder, made on first use (None without locks)."""
    if fcntl is None:
        return None
    root = Path(tempfile.gettempdir())
    if root not in _owners:
        _owners[root] = Owner(root)
    return _owners[root]


def session_folder() -> Path:
    """A new session folder in the temp folder, named after this process's owner."""
    return Path(tempfile.mkdtemp(prefix=SESSION_PREFIX + tag_prefix()))


def tag_prefix() -> str:
    """What this process's session folders' (after SESSION_PREFIX) and stop files' names begin with."""
    own = owner()
    return f"{own.tag}-" if own else ""


def sweep(root: str | Path | None = None) -> list[Path]:
    """Remove the session folders and stop files of every owner in ``root`` (the temp folder) that
    no longer runs, and its lock file; returns what was removed. Live owners are left alone."""
    if fcntl is None:
        return []
    root = Path(root or tempfile.gettempdir())
    removed = []
    for lock in root.glob(f"{OWNER_PREFIX}*.lock"):
        tag = lock.name[len(OWNER_PREFIX):-len(".lock")]
        if not _dead(lock):
            continue
        removed += _remove(root, tag)
    return removed


def _remove(root: Path, tag: str) -> list[Path]:
    """An owner's session folders, stop files and lock file."""
    found = [*root.glob(f"{SESSION_PREFIX}{tag}-*"), *(root / STOPS_NAME).glob(f"{tag}-*")]
    for p in found:
        discard(p)
    lock = root / f"{OWNER_PREFIX}{tag}.lock"
    lock.unlink(missing_ok=True)  # last: a sweep cut short is finished by the next
    return [*found, lock]


def _dead(lock: Path) -> bool:
    """No process holds ``lock`` (we could take it)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False  # gone already (another sweeper), or not ours to open
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the lock we may have taken
