"""Fine-tuning that does not forget: objective terms that hold a network near its source.

- :class:`L2SP` (Li, Grandvalet & Davoine 2018, "Explicit inductive bias for transfer learning
  with convolutional networks"): ``weight/2 * ||w - w0||^2`` over the pretrained body's
  trainable weights, ``w0`` their starting values. It pulls towards the source weights rather
  than towards zero, as plain weight decay does. A frozen body has no such weights: zero.
- :class:`HeadL2`: ``weight/2 * ||w||^2`` on the new head (the paper's second term).
- :class:`LwF` (Li & Hoiem 2016, "Learning without Forgetting"): the source model's own
  outputs on the target images are kept as soft targets; the network's body, read by the
  source's head, is asked to reproduce them, ``T^2 * KL(teacher || student)`` at temperature
  ``T`` (Hinton et al.'s distillation). The source's head stays frozen here, so the term
  holds the body's features to what the source task reads from them.

Each term is exactly zero at its starting point and is skipped at weight 0.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .objective import Term


class L2SP(Term):
    """``weight/2 * sum ||w - w0||^2`` over ``params``, ``w0`` their values when this is made."""

    name = "l2sp"

    def __init__(self, weight: float, params):
        super().__init__(weight)
        self.params = [p for p in params if p.requires_grad]
        self.start = [p.detach().clone() for p in self.params]

    def __call__(self, logits, y, x):
        if not self.params:
            return logits.new_zeros((), dtype=torch.float32)
        diffs = torch._foreach_sub(self.params, self.start)  # one kernel per list, not per tensor
        return 0.5 * torch.stack(torch._foreach_norm(diffs)).float().pow(2).sum()


class HeadL2(L2SP):
    """``weight/2 * ||w||^2`` on the new head's parameters (L2-SP's paper, its beta term)."""

    name = "head_l2"

    def __init__(self, weight: float, params):
        super().__init__(weight, params)
        self.start = [torch.zeros_like(p) for p in self.params]


class LwF(Term):
    """Distillation of the source model's outputs on the batch, read through the source's head
    from the features the network's new head receives (captured by a hook, not recomputed)."""

    name = "lwf"

    def __init__(self, weight: float, temperature: float, *, source: nn.Module, source_head: nn.Module,
                 head: nn.Module):
        super().__init__(weight)
        self.temperature = float(temperature)
        self.teacher = _frozen(source)
        self.source_head = _frozen(source_head)
        self.head, self.features, self._hook = head, None, None

    def open(self) -> None:
        if self._hook is None:
            self._hook = self.head.register_forward_pre_hook(self._capture)

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
        self._hook = self.features = None

    def _capture(self, module, args):
        self.features = args[0]

    def __call__(self, logits, y, x):
        with torch.no_grad():
            teacher = self.teacher(x).float()
        student = self.source_head(self.features.flatten(1)).float()
        t = self.temperature
        # KL between log-probabilities of both (log_target): exactly zero when they agree.
        kl = F.kl_div(F.log_softmax(student / t, 1), F.log_softmax(teacher / t, 1), reduction="batchmean",
                      log_target=True)
        return kl * t * t


def _frozen(module: nn.Module) -> nn.Module:
    m = copy.deepcopy(module).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def last_linear(model: nn.Module) -> nn.Module:
    """A network's classifier: a TransferNet's head, else its last ``nn.Linear`` (the tutorial's
    VGG ``classifier[6]``)."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear to be its head; pass head=.")
    return linears[-1]
