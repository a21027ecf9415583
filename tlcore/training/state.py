"""A paused run's state, in memory and on disk: safetensors for the tensors, JSON for the rest.

The trainer's ``state_dict()`` is a tree of dicts, lists, tuples, numbers, strings and tensors
(weights, optimizer moments, schedule position, random streams, the best epoch so far, the
history). :class:`LoopState` keeps a CPU copy of that tree and writes it as two files a reader
can inspect and that load without unpickling anything: ``state.safetensors`` holds every tensor
under its path in the tree, ``state.json`` the tree with each tensor replaced by that path.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..runs.atomic import atomic_folder, write_text
from ..device import to_cpu
from ..errors import TLCoreError

FORMAT = "tlcore-loop-state/1"
TENSORS_FILE, TREE_FILE = "state.safetensors", "state.json"
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


def encode(tree, tensors: dict[str, torch.Tensor], path: str = "") -> object:
    """``tree`` as JSON-able data; its tensors go into ``tensors`` under their paths."""
    if isinstance(tree, torch.Tensor):
        tensors[path] = tree
        return {_TENSOR: path}
    if isinstance(tree, dict):
        plain = all(isinstance(k, str) and k not in (_TENSOR, _TUPLE, _ITEMS) for k in tree)
        items = [(k, encode(v, tensors, f"{path}/{k}")) for k, v in tree.items()]
        if plain:
            return dict(items)
        if not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in tree):
            raise TypeError(f"cannot save dict keys of type {sorted({type(k).__name__ for k in tree})} at {path!r}")
        return {_ITEMS: [list(kv) for kv in items]}  # optimizer state is keyed by int
    if isinstance(tree, tuple):
        return {_TUPLE: [encode(v, tensors, f"{path}/{i}") for i, v in enumerate(tree)]}
    if isinstance(tree, list):
        return [encode(v, tensors, f"{path}/{i}") for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"cannot save a {type(tree).__name__} at {path!r} in a loop state")


def decode(data, tensors: dict[str, torch.Tensor]):
    """The inverse of :func:`encode`."""
    if isinstance(data, list):
        return [decode(v, tensors) for v in data]
    if not isinstance(data, dict):
        return data
    if _TENSOR in data:
        return tensors[data[_TENSOR]]
    if _TUPLE in data:
        return tuple(decode(v, tensors) for v in data[_TUPLE])
    if _ITEMS in data:
        return {k: decode(v, tensors) for k, v in data[_ITEMS]}
    return {k: decode(v, tensors) for k, v in data.items()}


class LoopState:
    """Everything a paused run needs to go on exactly where it stopped (a CPU copy).

    Made by :meth:`tlcore.training.loop.Trainer.state_dict`; given back to a trainer with
    ``train(..., resume=state)``. ``save`` / ``load`` are its file form.
    """

    def __init__(self, tree: dict):
        self.tree = to_cpu(tree)

    @property
    def epochs_done(self) -> int:
        return int(self.tree["epochs_done"])

    def state_dict(self) -> dict:
        return self.tree

    def load_state_dict(self, tree: dict) -> None:
        self.tree = to_cpu(tree)

    def save(self, folder: str | Path) -> Path:
        """Write ``state.safetensors`` and ``state.json`` into ``folder`` (whole or not at all; an
        earlier state there is replaced)."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        tree = encode(self.tree, tensors)
        with atomic_folder(folder, mark=TREE_FILE) as tmp:
            # Every tensor is this state's own copy (to_cpu), so none shares memory, as safetensors requires.
            save_file({k: t.contiguous() for k, t in tensors.items()}, str(tmp / TENSORS_FILE))
            (tmp / TREE_FILE).write_text(json.dumps({"format": FORMAT, "state": tree}))
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path) -> "LoopState":
        """Read what :meth:`save` wrote; anything else is a TLCoreError naming the folder."""
        from safetensors.torch import load_file

        folder = Path(folder)
        try:
            meta = json.loads((folder / TREE_FILE).read_text())
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"not {FORMAT}")
            tree = decode(meta["state"], load_file(str(folder / TENSORS_FILE)))
            int(tree["epochs_done"])
        except Exception as e:  # missing, truncated, foreign or hand-edited files
            raise TLCoreError(f"{folder} holds no readable paused-run state ({FORMAT}): {type(e).__name__}.") from None
        return cls(tree)


# A finished run keeps its last epoch's state beside its files, so it can be continued later
# (tlcore.training.resume). The files it belongs to are fingerprinted: a run folder whose weights or
# config were changed or swapped since does not continue from a state that is not its own.
END_STATE_DIR = "resume"
SOURCE_FILE = "source.json"
FINGERPRINTED = ("config.json", "model.safetensors")


def _sha256(path: Path) -> str:
    import hashlib

    with open(path, "rb") as f:  # in chunks: a big model's weights need not sit in memory twice
        return hashlib.file_digest(f, "sha256").hexdigest()


def save_end_state(run_folder: str | Path, state: LoopState) -> Path:
    folder = state.save(Path(run_folder) / END_STATE_DIR)
    prints = {name: _sha256(Path(run_folder) / name) for name in FINGERPRINTED}
    prints[TENSORS_FILE] = _sha256(folder / TENSORS_FILE)
    write_text(folder / SOURCE_FILE, json.dumps(prints, indent=1))
    return folder


def load_end_state(run_folder: str | Path) -> LoopState:
    """A saved run's last state, if it has one and its files are the ones it was saved with."""
    run_folder = Path(run_folder)
    folder = run_folder / END_STATE_DIR
    if not (folder / SOURCE_FILE).is_file():
        raise TLCoreError(f"{run_folder.name} cannot be continued: it holds no training state (only runs that "
                          f"finished their epochs keep one; a stopped or failed run does not).")
    try:
        prints = json.loads((folder / SOURCE_FILE).read_text())
        changed = [n for n, h in prints.items() if _sha256((folder if n == TENSORS_FILE else run_folder) / n) != h]
    except (OSError, ValueError, AttributeError) as e:
        raise TLCoreError(f"{run_folder.name} cannot be continued: its files are unreadable ({type(e).__name__}).") from None
    if changed:
        raise TLCoreError(f"{run_folder.name} cannot be continued: {', '.join(changed)} changed since the run was "
                          f"saved, so its training state is not this run's. Nothing was started.")
    return LoopState.load(folder)
