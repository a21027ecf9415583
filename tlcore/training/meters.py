"""What a run keeps count of: its best epoch, its clock, an epoch's running loss and accuracy.

Small and stateful, each with ``state_dict()`` where a paused run needs it.
"""
from __future__ import annotations

import math
import time

import torch

from ..device import to_cpu


class BestEpoch:
    """The best validation loss so far and its weights (on the CPU), and the epochs since it."""

    def __init__(self, patience: int = 0):
        self.patience = patience  # early stopping after this many epochs without a better loss; 0 = never
        self.loss, self.weights, self.epoch, self.bad_epochs = math.inf, None, 0, 0
        self._marks: dict[str, int] = {}  # the frozen parameters' storage at the last snapshot

    def update(self, epoch: int, val_loss: float, model: torch.nn.Module) -> bool:
        """Record an epoch's validation loss; True (and its weights kept) if it is the best."""
        if val_loss < self.loss:
            self.loss, self.bad_epochs, self.epoch = val_loss, 0, epoch
            self.weights = self._snapshot(model)
            return True
        self.bad_epochs += 1
        return False

    def _snapshot(self, model: torch.nn.Module) -> dict:
        """The weights on the CPU. A parameter frozen at the last snapshot and still frozen, in
        the same storage, has not changed (nothing trains it; unfreezing only ever thaws) and is
        not copied again: a frozen body is copied once, not every better epoch (VGG-11's 0.5 GB
        took 0.3-0.5 s each). Trained parameters and buffers (BatchNorm's statistics) are copied.
        (Tensor versions would say more, but the optimizers' in-place steps do not count them.)"""
        frozen = {k: p.data_ptr() for k, p in model.named_parameters() if not p.requires_grad}
        old, out = self.weights or {}, {}
        for k, v in model.state_dict().items():
            same = k in frozen and k in old and self._marks.get(k) == frozen[k]
            out[k] = old[k] if same else to_cpu(v)
        self._marks = frozen
        return out

    @property
    def patience_spent(self) -> bool:
        return bool(self.patience) and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"loss": self.loss, "weights": self.weights, "epoch": self.epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.loss, self.weights = state["loss"], state["weights"]
        self.epoch, self.bad_epochs = state["epoch"], state["bad_epochs"]
        self._marks = {}  # the next snapshot copies everything


def best_epoch(history: list) -> int:
    """The epoch whose weights a run keeps: the last one its EpochEvents mark best (0: none)."""
    return next((e.epoch for e in reversed(history) if e.best), 0)


class Clock:
    """Images trained on and seconds spent training, across the calls of a paused run."""

    def __init__(self):
        self.seen, self.before, self.start = 0, 0.0, time.perf_counter()

    def restart(self) -> None:
        self.start = time.perf_counter() - self.before

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def rate(self, now: float | None = None) -> float:
        return self.seen / max((now or time.perf_counter()) - self.start, 1e-9)

    def state_dict(self) -> dict:
        return {"seen": self.seen, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.seen, self.before = state["seen"], state["seconds"]


class EpochMeter:
    """Training loss and accuracy of the epoch so far, summed on the device (no sync per step)."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.n = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss += loss * len(y)
        self.correct += (logits.argmax(1) == y).sum()
        self.n += len(y)

    def read(self) -> tuple[float, float]:
        """(mean loss, accuracy): a CPU-GPU sync point."""
        return self.loss.item() / max(self.n, 1), self.correct.item() / max(self.n, 1)
