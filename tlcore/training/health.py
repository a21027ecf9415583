"""Is a run learning? A loss that explodes ends it; accuracy that stays at chance is said plainly.

NaN is not the only way a run fails: with a learning rate far too high, the loss can climb to
1e27 and the network's units die, after which every epoch "completes" at 10% on ten classes.
Both are caught here with advice, so a run like that is never reported as a success.
"""
from __future__ import annotations

import math

import torch

# A model that guesses uniformly scores a cross-entropy of ln(C); a running loss this many times
# higher is not a hard start but a blow-up (from a fresh head the first steps sit near ln(C)).
EXPLODE_FACTOR = 10.0
# Validation accuracy within this of always answering the commonest class is "at chance".
CHANCE_MARGIN = 0.02


def explode_threshold(num_classes: int) -> float:
    """The running training loss above which a run is said to have exploded."""
    return EXPLODE_FACTOR * max(math.log(num_classes), math.log(2))


def exploded_message(loss: float, epoch: int, step: int, num_classes: int, lr: float) -> str:
    return (f"The training loss exploded to {loss:.3g} at epoch {epoch}, step {step} (a model that only guesses "
            f"scores {math.log(num_classes):.2f}): the learning rate {lr:g} is too high. Try {lr / 10:g}, or the "
            f"suggested settings.")


def nan_message(epoch: int, step: int, lr: float) -> str:
    return (f"The training loss became NaN or infinite at epoch {epoch}, step {step}: the learning rate {lr:g} "
            f"is too high. Try {lr / 10:g}, or the suggested settings.")


def majority_share(labels: torch.Tensor) -> float:
    """Accuracy of always answering the commonest class: what "chance" means on this split."""
    if len(labels) == 0:
        return math.nan
    return torch.bincount(labels).max().item() / len(labels)


def chance_note(val_accuracy: float | None, labels: torch.Tensor, lr: float) -> str | None:
    """A plain sentence when the kept epoch's validation accuracy is no better than chance."""
    chance = majority_share(labels)
    if val_accuracy is None or not math.isfinite(chance) or val_accuracy > chance + CHANCE_MARGIN:
        return None
    return (f"The model learned nothing: its validation accuracy {val_accuracy:.1%} is what always answering the "
            f"commonest class scores ({chance:.1%}). Most often the learning rate is too high (it was {lr:g}: try "
            f"{lr / 10:g}) or far too low; the suggested settings are a safe start.")
