"""One update of the weights: the only code in tlcore that changes them.

Forward under autocast, the objective's loss, backward (scaled for fp16), the optimizer, then
the schedule. Training calls it once per batch; a learning-rate sweep can call it on a copy.
Its ``state_dict`` is the optimizer's, the schedule's and the loss scaler's.
"""
from __future__ import annotations

import torch

from ..device import autocast
from .objective import Objective


class Step:
    """``step(x, y) -> (loss, logits)``, both detached from the graph.

    Args:
        net: what the batch goes through (the whole model, or only its head on cached features).
        optimizer, scheduler: torch's; the scheduler (if any) steps after every update.
        objective: the loss; it sees the batch's inputs too (for terms that need them).
        amp: the autocast dtype, or None for fp32. fp16 gets a loss scaler; bf16 needs none.
    """

    def __init__(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, objective: Objective,
                 *, amp: torch.dtype | None, device: torch.device):
        self.net, self.optimizer, self.scheduler, self.objective = net, optimizer, scheduler, objective
        self.device, self.amp = device, amp
        self.scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(self.device, self.amp):
            logits = self.net(x)
            loss = self.objective(logits, y, x)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:  # fp16 needs loss scaling; bf16 and fp32 do not
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach(), logits.detach()

    @property
    def lr(self) -> float:
        """The first parameter group's learning rate (the head's)."""
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load_state_dict(self, state: dict, *, schedule: bool = True) -> None:
        """``schedule=False``: the moments are loaded but this step's own schedule stays as built
        (a resumed run's new schedule): its learning rates and cycle settings are kept."""
        fresh = None if schedule else [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        if fresh is not None:
            for group, own in zip(self.optimizer.param_groups, fresh):
                group.update(own)
        # Copies, laid out as their parameters: torch keeps the given tensors (training would then
        # change the state it resumed from), and a state read from disk is contiguous, while a
        # channels_last parameter's momentum must match it or a fused update pairs wrong elements.
        for p, slots in self.optimizer.state.items():
            for k, v in slots.items():
                if isinstance(v, torch.Tensor):
                    like = torch.empty_like(p, dtype=v.dtype) if v.shape == p.shape else torch.empty_like(v)
                    slots[k] = like.copy_(v)
        if self.scheduler is not None and schedule:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
