"""The optimizer and the learning-rate schedule a RunConfig asks for.

Schedules step once per batch (so a run paused at an epoch boundary resumes mid-schedule
exactly); the tutorial's StepLR is counted in epochs and converted.
"""
from __future__ import annotations

import torch

from ..config import RunConfig
from ..errors import TLCoreError
from ..models import HEAD, TransferNet


def group_rates(model: TransferNet, cfg: RunConfig) -> dict[str, float]:
    """Each layer group's planned rate, head first: the head at ``lr``, the body's top group at
    ``lr * body_lr_mult``, each deeper one ``layer_lr_decay`` times the one above (ULMFiT's
    discriminative rates: the lower a layer, the more general its features, the less it moves)."""
    body = model.body_group_names()
    rates = {HEAD: cfg.lr}
    for depth, g in enumerate(reversed(body)):
        rates[g] = cfg.lr * cfg.body_lr_mult * cfg.layer_lr_decay ** depth
    return rates


def param_groups(model: TransferNet, cfg: RunConfig) -> list[dict]:
    """Head at ``lr``, trainable body at its :func:`group_rates`; no weight decay on biases and norms."""
    if cfg.layer_lr_decay == 1:  # one rate for the body: one group, in the body's own order (saved states rely on it)
        parts = [(model.head.parameters(), cfg.lr), (model.body.parameters(), cfg.lr * cfg.body_lr_mult)]
    else:
        parts = [([p for _, p in model.group_parameters(g)], lr) for g, lr in group_rates(model, cfg).items()]
    groups = []
    for params, lr in parts:
        ps = [p for p in params if p.requires_grad]
        decay = [p for p in ps if p.ndim > 1]
        other = [p for p in ps if p.ndim <= 1]
        groups += [g for g in ({"params": decay, "lr": lr, "weight_decay": cfg.weight_decay},
                               {"params": other, "lr": lr, "weight_decay": 0.0}) if g["params"]]
    if not groups:
        raise TLCoreError("Nothing would train: every layer group is frozen. Unfreeze at least the head.")
    return groups


def build_optimizer(model: TransferNet, cfg: RunConfig, steps_per_epoch: int):
    """``(optimizer, scheduler)`` for the model's trainable parameters."""
    groups = param_groups(model, cfg)
    # Fused kernels update every tensor in one pass: fewer tiny ops per step on CPU and CUDA.
    dev = next(p for g in groups for p in g["params"]).device
    fused = True if dev.type in ("cpu", "cuda") else None
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, fused=fused)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr, fused=fused)
    return opt, build_scheduler(opt, cfg, steps_per_epoch)


def build_scheduler(opt: torch.optim.Optimizer, cfg: RunConfig, steps_per_epoch: int):
    """The schedule, stepped once per batch; ``warmup_epochs`` of linear warmup in front of step,
    cosine or constant (onecycle rises for that long instead, by default a quarter of the run)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = min(total - 1, int(cfg.warmup_epochs * steps_per_epoch))
    S = torch.optim.lr_scheduler
    if cfg.scheduler == "onecycle":
        if total < 2:  # one step cannot rise and fall (OneCycleLR divides by zero)
            return S.LambdaLR(opt, lambda _: 1.0)
        pct = cfg.warmup_epochs / cfg.epochs if cfg.warmup_epochs else 0.25
        # Each phase at least a step and a half: OneCycleLR divides by their lengths (4 steps x 0.25 is 0).
        pct = min(max(pct, 0.01, 1.5 / total), 0.99, 1 - 1.5 / total) if total >= 3 else 0.75
        return S.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=total,
                            pct_start=pct, cycle_momentum=cfg.optimizer == "sgd" and cfg.momentum > 0)
    if cfg.scheduler == "step":  # the tutorial's StepLR, counted in steps so it can step per batch
        main = S.StepLR(opt, step_size=cfg.step_size * steps_per_epoch, gamma=cfg.gamma)
    elif cfg.scheduler == "cosine":
        main = S.CosineAnnealingLR(opt, T_max=max(1, total - warm))
    else:
        main = S.ConstantLR(opt, factor=1.0, total_iters=0)
    if warm > 0:
        return S.SequentialLR(opt, [S.LinearLR(opt, 0.01, 1.0, total_iters=warm), main], milestones=[warm])
    return main
