"""Gradual unfreezing as a schedule (ULMFiT's; Lightning's ``BackboneFinetuning``).

The head trains alone first, on features the pretrained body gives as they are; then, every
``unfreeze_every`` epochs, the next layer group down from the top joins, until every group the
freezing preset lets train is training. The new head's first, large gradients then never reach
the lower layers, whose features are the most general and the most worth keeping.

The schedule is a function of the epoch alone, so a paused or continued run picks it up where
it was. The optimizer holds every group that will train from the start (a group not yet
thawed has no gradient, and torch's optimizers skip it): the learning-rate schedule then spans
the whole run, and each group's rate is its discriminative one (:func:`tlcore.training.optim.group_rates`).
"""
from __future__ import annotations

from ..models import HEAD, TransferNet, freeze

NOTHING_TO_THAW = "Gradual unfreezing has nothing to thaw: the freezing preset keeps the whole body frozen."


def thaw_order(model: TransferNet) -> list[str]:
    """The body groups that train in the end (not frozen now), top (next to the head) first."""
    return [g for g in reversed(model.body_group_names()) if g not in model.frozen]


def live_at(order: list[str], every: int, epoch: int) -> list[str]:
    """The groups training in ``epoch`` (1-based), head first; ``every`` 0: all of them."""
    n = len(order) if every <= 0 else min(len(order), (epoch - 1) // every)
    return [HEAD, *order[:n]]


def schedule_note(order: list[str], every: int, epochs: int) -> str:
    """What gradual unfreezing does over a run of ``epochs``, in one sentence for the run's notes."""
    joining = live_at(order, every, epochs)[1:]  # by the last epoch, after the head
    pace = "one per epoch" if every == 1 else f"one every {every} epochs"
    left = order[len(joining):]
    return (f"Gradual unfreezing: the head alone first, then {', '.join(joining) or 'nothing'} ({pace})"
            + (f"; {', '.join(left)} stay frozen: the run ends first." if left else "."))


def plan(model: TransferNet, every: int, epochs: int) -> list[tuple[int, list[str]]]:
    """``(first epoch, groups training from it)`` at each change of the schedule, for a model
    frozen as it will be at the end."""
    order, out = thaw_order(model), []
    for epoch in range(1, max(epochs, 1) + 1):
        live = live_at(order, every, epoch)
        if not out or live != out[-1][1]:
            out.append((epoch, live))
    return out


class Unfreezer:
    """Applies the schedule to a model frozen as it will be at the end of the run."""

    def __init__(self, model: TransferNet, every: int, train_bn: bool):
        self.order, self.every, self.train_bn = thaw_order(model), every, train_bn
        self.all_groups = model.body_group_names()

    @property
    def active(self) -> bool:
        """There is something to thaw, and a schedule to thaw it by."""
        return self.every > 0 and bool(self.order)

    def apply(self, model: TransferNet, epoch: int) -> list[str]:
        """Freeze ``model`` as ``epoch`` wants it; the groups that joined at this epoch."""
        live = live_at(self.order, self.every, epoch)
        freeze(model, frozen=[g for g in self.all_groups if g not in live], train_bn=self.train_bn)
        before = live_at(self.order, self.every, epoch - 1) if epoch > 1 else live
        return [g for g in live if g not in before]
