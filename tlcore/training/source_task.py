"""The source a run transfers from: the objective that keeps it, and what it forgot.

When a run starts from one of our saved runs (the bundled MNIST LeNet-5, or any run saved by
the app or the CLI), the source model is known whole: its body and its own head. Learning
without Forgetting distils its outputs, and its replay sample (a few hundred images of the
source task, saved with every run) measures the source task before and after fine-tuning:
the current body read by the source's head, on the source's test images.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..runs.checkpoints import load_replay, load_run
from ..config import RunConfig
from ..data import ImageData
from ..insight.predict import predict_probs
from ..models import TransferNet
from .objective import Objective
from .regularizers import L2SP, HeadL2, LwF, last_linear
from ..runs.folder import source_folder

NO_SOURCE = ("LwF is off: it needs the source model's outputs. Choose a saved run (such as the bundled "
             "lenet5-mnist) as the weights to keep what it knew.")
FROZEN_BODY = "L2-SP and LwF do nothing here: the body is frozen, so it cannot drift from its source."


@dataclass
class SourceTask:
    """A saved run as the source: its whole model and, if it has one, its replay sample."""

    model: TransferNet
    replay: ImageData | None

    @classmethod
    def of(cls, weights: str) -> "SourceTask | None":
        """The source task behind RunConfig ``weights``: a saved run's folder, else None (ImageNet, none)."""
        folder = source_folder(weights)
        if folder is None:
            return None
        model, _ = load_run(folder)
        return cls(model, load_replay(folder, model.classes))

    def accuracy(self, body: TransferNet, *, device: torch.device, amp: torch.dtype | None, stop=None) -> float | None:
        """Accuracy on the source's test sample of ``body`` read by the source's own head."""
        if self.replay is None or len(self.replay.test) == 0:
            return None
        mixed = copy.deepcopy(body).to(device)
        mixed.head = copy.deepcopy(self.model.head).to(device)
        probs = predict_probs(mixed.eval(), self.replay.test.images, device=device, autocast_dtype=amp, stop=stop)
        return float((probs.argmax(1) == self.replay.test.labels).float().mean())


def keeping_terms(model: nn.Module, head: nn.Module, *, l2sp: float = 0.0, head_l2: float = 0.0,
                  lwf: float = 0.0, temperature: float = 2.0, teacher: nn.Module | None = None) -> tuple[list, list[str]]:
    """The terms that keep ``model`` near its source, and notes about any that cannot act.

    ``model`` is at its starting weights (L2-SP pulls back to them); ``head`` is its new
    classifier, everything else that trains is the pretrained body; ``teacher`` is the source
    model, whose own classifier (its last ``nn.Linear``) reads the body for LwF.
    """
    in_head = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in in_head]
    terms, notes = [], []
    if head_l2:
        terms.append(HeadL2(head_l2, head.parameters()))
    if l2sp and body:  # its starting point is a copy of the body: made only when used
        terms.append(L2SP(l2sp, body))
    if lwf and body and teacher is not None:
        terms.append(LwF(lwf, temperature, source=teacher, source_head=last_linear(teacher), head=head))
    elif lwf and body:
        notes.append(NO_SOURCE)
    if (l2sp or lwf) and not body:
        notes.append(FROZEN_BODY)
    return terms, notes


def objective_for(cfg: RunConfig, model: TransferNet, source: SourceTask | None,
                  device: torch.device) -> tuple[Objective, list[str]]:
    """The loss ``cfg`` asks for on ``model`` (placed, frozen, at its starting weights), and
    notes for the user about terms that cannot act."""
    teacher = None
    if source is not None and cfg.lwf_weight:
        teacher = source.model.to(device).to(memory_format=torch.channels_last)
    terms, notes = keeping_terms(model, model.head, l2sp=cfg.l2sp, head_l2=cfg.head_l2, lwf=cfg.lwf_weight,
                                 temperature=cfg.lwf_temperature, teacher=teacher)
    return Objective(cfg.label_smoothing, terms=terms), notes
