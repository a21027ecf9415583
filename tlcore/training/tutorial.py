"""``TransferLearningModel``: the tutorial's own API, on the engine's trainer, step and objective.

The tutorial this studio grew from fine-tunes like this::

    tlm = TransferLearningModel(model, optimizer, criterion, scheduler, lambda1=1, lambda2=1, T=5)
    tlm.fit(trainloader, testloader)
    acc = tlm.eval(testloader)
    _, _, pred = tlm.predict(testloader)

Any ``nn.Module`` (a torchvision model with its last layer replaced, or a TransferNet), any
optimizer, criterion and scheduler, ordinary ``DataLoader`` s or the engine's own loaders and
splits. The three knobs keep their classic meaning: ``lambda1`` weighs L2-SP (the trainable
weights outside the head pulled back to where they started; zero when, as in the tutorial,
only the head trains), ``lambda2`` weighs Learning without Forgetting at temperature ``T`` (it
needs the source model: ``source=``, or the run a TransferNet was built from).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import RunConfig
from ..data import BatchLoader, ImageData, Split
from ..device import autocast, autocast_dtype, pick_device
from ..errors import TLCoreError
from ..insight.predict import predict_probs
from ..events import Callback, EpochEvent
from .objective import Objective
from .regularizers import last_linear
from .result import Status
from .source_task import NO_SOURCE, keeping_terms
from .step import Step
from .callbacks import Acting, fit_callbacks
from .loop import Trainer

DEFAULT_EPOCHS = 25  # the tutorial's num_epochs
NO_SOURCE_HERE = ("lambda2 is not 0 but LwF is off: it needs the source model's outputs. Pass source= (the model "
                  "before its head was replaced, or a saved run's folder) to turn it on, or lambda2=0 to say so.")


class OnDevice:
    """A loader's batches moved to the device (channels_last for images, as the engine trains)."""

    def __init__(self, loader, device: torch.device):
        self.loader, self.device = loader, device
        self.batch_size = getattr(loader, "batch_size", None)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True)
            yield (x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x), y.to(self.device)

    def state_dict(self) -> dict:  # a DataLoader's order is its own sampler's
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class EpochPrinter(Callback):
    """One line per epoch on stdout, as the tutorial printed them."""

    def on_epoch_end(self, trainer, e: EpochEvent) -> None:
        val = "" if math.isnan(e.val_loss) else f" | val loss {e.val_loss:.4f} acc {e.val_accuracy:.4f}"
        print(f"Epoch {e.epoch}/{e.epochs}: train loss {e.train_loss:.4f} acc {e.train_accuracy:.4f}{val}", flush=True)


class EpochSchedule(Acting):
    """Steps the tutorial's scheduler once per epoch (the engine's own schedules step per update)."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def on_epoch_end(self, trainer, e: EpochEvent) -> None:
        self.scheduler.step()


def _source(model: nn.Module, source) -> nn.Module | None:
    """The source model: a module, a saved run's folder, or the run a TransferNet came from."""
    from ..runs.checkpoints import load_run

    source = source if source is not None else getattr(model, "source_run", None)
    if isinstance(source, (str, Path)):
        source = load_run(source)[0]
    return source


class TransferLearningModel:
    """Fine-tune ``model`` with ``optimizer`` on ``criterion``, stepping ``scheduler`` once per epoch.

    Args:
        lambda1: weight of L2-SP (Li et al. 2018) on the trainable weights outside the head.
        lambda2: weight of Learning without Forgetting (Li & Hoiem 2016); needs a source model.
        T: LwF's temperature.
        head: the new classifier (default: a TransferNet's head, else the last ``nn.Linear``).
        source: the source model (a module or a saved run's folder) for LwF.
        device: "auto" (CUDA, then MPS, then CPU), or a device name.
        precision: "auto", "fp32", "bf16" or "fp16", as for ``train``.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion, scheduler=None,
                 lambda1: float = 1.0, lambda2: float = 1.0, T: float = 5.0, *, head: nn.Module | None = None,
                 source: nn.Module | str | Path | None = None, device: str = "auto", precision: str = "auto",
                 verbose: bool = True):
        self.device = pick_device(device)
        self.precision = RunConfig.check(precision=precision)["precision"]
        self.amp = autocast_dtype(self.device, precision)
        # In place: the optimizer's parameters stay the model's.
        self.model = model.to(self.device).to(memory_format=torch.channels_last)
        self.head = head if head is not None else last_linear(model)
        self.optimizer, self.criterion, self.scheduler = optimizer, criterion, scheduler
        teacher = _source(model, source) if lambda2 else None
        if teacher is not None:
            teacher = teacher.to(self.device).to(memory_format=torch.channels_last)
        terms, notes = keeping_terms(self.model, self.head, l2sp=lambda1, lwf=lambda2, temperature=T, teacher=teacher)
        if NO_SOURCE in notes:  # (L2-SP on a frozen body is zero by design: documented, not warned)
            warnings.warn(NO_SOURCE_HERE, stacklevel=2)
        self.objective = Objective(criterion=criterion, terms=terms)
        self.verbose = verbose
        self.history: list[EpochEvent] = []

    def fit(self, trainloader, valloader=None, epochs: int = DEFAULT_EPOCHS,
            callbacks: list[Callback] = ()) -> list[EpochEvent]:
        """Train for ``epochs`` (default 25); validate on ``valloader`` after each epoch and keep
        the weights of the best validation loss. Returns this fit's history (one EpochEvent per epoch)."""
        ours = [EpochPrinter()] if self.verbose else []
        if self.scheduler is not None:  # after the other callbacks: they see the epoch's own rate
            ours.append(EpochSchedule(self.scheduler))
        lr = self.optimizer.param_groups[0]["lr"]  # (for advice, should the loss diverge)
        trainer = Trainer(epochs=epochs, callbacks=fit_callbacks([*callbacks, *ours], lr=lr))
        step = Step(self.model, self.optimizer, None, self.objective, amp=self.amp, device=self.device)
        trainer.assemble(self.model, step, self._batches(trainloader),
                         None if valloader is None else self._batches(valloader))
        if trainer.fit() is Status.FAILED:
            raise TLCoreError(trainer.message)
        self.history += trainer.history
        return trainer.history

    def _batches(self, loader):
        return loader if isinstance(loader, BatchLoader) else OnDevice(loader, self.device)  # the engine's are there

    def _predict_split(self, split: Split) -> torch.Tensor:
        """A TransferNet on one of the engine's splits, as ``evaluate`` judges a saved run (weights in
        the standard layout), so it scores exactly as ``train`` scored the same weights."""
        if not hasattr(self.model, "spec"):
            raise TLCoreError("A split needs a TransferNet (it knows its input size); pass a DataLoader instead.")
        self.model.to(memory_format=torch.contiguous_format)
        try:
            return predict_probs(self.model, split.images, device=self.device, autocast_dtype=self.amp)
        finally:
            self.model.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def predict(self, loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(targets, predictions, probabilities)``: numpy arrays, probabilities of shape (N, classes)."""
        if isinstance(loader, (Split, ImageData)):
            split = loader.test if isinstance(loader, ImageData) else loader
            probs = self._predict_split(split)
            return split.labels.numpy(), probs.argmax(1).numpy(), probs.numpy()
        was, targets, probs = self.model.training, [], []
        self.model.eval()
        for x, y in self._batches(loader):
            with autocast(self.device, self.amp):
                probs.append(self.model(x).float().softmax(1).cpu())
            targets.append(y.cpu())
        self.model.train(was)
        p = torch.cat(probs)
        return torch.cat(targets).numpy(), p.argmax(1).numpy(), p.numpy()

    def eval(self, loader) -> float:
        """Accuracy on ``loader`` (a DataLoader, or a Split / a dataset's test split), in [0, 1]."""
        targets, predictions, _ = self.predict(loader)
        return float((targets == predictions).mean()) if len(targets) else 0.0
