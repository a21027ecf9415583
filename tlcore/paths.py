"""Where data is read from and where caches are written (never into the data folder)."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "TLCORE_DATA_DIR"


def cache_dir() -> Path:
    """A writable per-user cache: $TLCORE_CACHE_DIR, else $XDG_CACHE_HOME/tlcore, else ~/.cache/tlcore."""
    if os.environ.get("TLCORE_CACHE_DIR"):
        return Path(os.environ["TLCORE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tlcore"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $TLCORE_DATA_DIR, else the cache's datasets folder."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return cache_dir() / "datasets"


def runs_dir() -> Path:
    """Where the CLI saves runs by default and the app looks for saved ones: $TLCORE_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("TLCORE_RUNS_DIR") or "runs").expanduser()


# The models shipped with the app (assets/models): the bundled MNIST LeNet-5 is the default
# source model and the Draw tab's default.
BUNDLED_RUNS = Path(__file__).resolve().parents[1] / "assets" / "models"
BUNDLED_MNIST = BUNDLED_RUNS / "lenet5-mnist"
