"""The objective: what a training step minimises. Cross-entropy, plus weighted terms.

The loss lives here and nowhere else, so a regularizer is a term added to the objective
(L2-SP's pull towards the pretrained weights, distillation of the source model's outputs),
not an edit to the loop. Validation does not use it: the weights kept are chosen by plain
cross-entropy, whatever was added to train them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


class Term:
    """One weighted addition to the loss. Subclasses compute it from the batch."""

    name = "term"

    def __init__(self, weight: float):
        self.weight = float(weight)

    def __call__(self, logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The term's value for this batch (before weighting)."""
        raise NotImplementedError

    def open(self) -> None:
        """Training begins: attach whatever the term watches (hooks)."""

    def close(self) -> None:
        """Training ends: detach it, so the model carries nothing of the term."""


class Objective:
    """``criterion(logits, y) + sum(weight * term(logits, y, x))``.

    Args:
        label_smoothing: for the default criterion, cross-entropy on float32 logits.
        class_weight: for the default criterion, a weight per class (None: all alike).
        criterion: any ``(logits, targets) -> loss`` instead (a tutorial's ``nn.CrossEntropyLoss()``).
        terms: extra :class:`Term` s; a term of weight 0 is skipped, not computed.
    """

    def __init__(self, label_smoothing: float = 0.0, *, criterion: Callable | None = None,
                 terms: Sequence[Term] = (), class_weight: torch.Tensor | None = None):
        self.label_smoothing = label_smoothing
        self.criterion = criterion
        self.terms = [t for t in terms if t.weight != 0]
        self.class_weight = class_weight  # skewed classes (tlcore.training.balance): a weight per class

    def __call__(self, logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        if self.criterion is None:
            weight = None if self.class_weight is None else self.class_weight.to(logits.device)
            loss = F.cross_entropy(logits.float(), y, weight=weight, label_smoothing=self.label_smoothing)
        else:
            loss = self.criterion(logits, y)
        for term in self.terms:
            loss = loss + term.weight * term(logits, y, x)
        return loss

    def open(self) -> None:
        for term in self.terms:
            term.open()

    def close(self) -> None:
        for term in self.terms:
            term.close()
