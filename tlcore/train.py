"""The training loop: fine-tune a TransferNet on an ImageData, firing events as it goes.

Phases: loading (data, model, freezing) -> caching features (only when the whole body is
frozen and there is no augmentation: each image goes through the body once, as Teachable
Machine does, and the head trains on the cache) -> training (epochs of steps, validation
after each) -> evaluating (the best epoch's weights on the test split) -> saving.

Stop requests are honoured within one step; a NaN loss or running out of GPU memory ends the
run with a plain message. The weights kept are always the best validation loss seen so far.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import RunConfig
from .data import Augment, BatchLoader, ImageData, load_dataset
from .data.loader import TensorLoader
from .errors import TLCoreError
from .evaluate import Evaluation, evaluate, evaluate_probs
from .events import Callback, EpochEvent, RunEnd, RunInfo, StepEvent, StopRequested, StopToken
from .models import TransferNet, create_backbone, freeze
from .preprocess import prepare

STEP_EVENT_EVERY_S = 0.5


@dataclass
class RunResult:
    model: TransferNet  # the best epoch's weights, on the CPU, in eval mode
    config: RunConfig
    classes: list[str]
    status: str  # completed | early-stopped | stopped | failed | paused
    message: str
    history: list[EpochEvent] = field(default_factory=list)
    best_epoch: int = 0
    test: Evaluation | None = None
    images_per_second: float = 0.0
    seconds: float = 0.0
    device: str = ""
    checkpoint: Path | None = None
    resume: "LoopState | None" = None  # set when status is "paused" (see train's budget_s)

    @property
    def val_accuracy(self) -> float | None:
        best = [e for e in self.history if e.epoch == self.best_epoch]
        return best[0].val_accuracy if best else None

    def summary(self) -> dict:
        """The CLI's ``--json`` line."""
        return {
            "status": self.status,
            "message": self.message,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "test_accuracy": self.test.accuracy if self.test else None,
            "val_accuracy": self.val_accuracy,
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            "images_per_second": round(self.images_per_second, 1),
            "seconds": round(self.seconds, 2),
            "device": self.device,
        }


# -- device and precision ----------------------------------------------------------------------
def pick_device(name: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU; an explicit choice that is not available is an error."""
    cuda, mps = torch.cuda.is_available(), getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise TLCoreError(f"device {name!r} is not available here; use 'auto' or 'cpu'.")
    return torch.device(name)


def describe_device(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "Apple MPS"
    return f"CPU, {torch.get_num_threads()} threads"


def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16: bf16 matmuls and convolutions run faster than fp32 on this CPU."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # older torch: no probe, so no assumption
        return False


PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def run_autocast_dtype(dev: torch.device, run: dict) -> torch.dtype | None:
    """The precision to judge a saved run with: on a CPU, the one it was trained and tested in
    (bf16 works on any CPU, if slower without AMX), so its test accuracy is reproduced exactly;
    on a GPU, the usual rule."""
    used = run.get("precision_used")
    if dev.type == "cpu" and used in ("fp32", "bf16"):
        return None if used == "fp32" else torch.bfloat16
    return autocast_dtype(dev, run.get("precision", "auto"))


def autocast_dtype(dev: torch.device, precision: str) -> torch.dtype | None:
    """None means fp32.

    Auto: bf16 on CUDA when supported (no loss scaling needed), else fp16; bf16 on a CPU with
    AMX / AVX512-BF16 (a third faster for LeNet-5 here), else fp32; fp32 on MPS.
    """
    if precision == "fp32":
        return None
    if precision == "auto":
        if dev.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if dev.type == "cpu" and cpu_has_fast_bf16() else None
    return torch.bfloat16 if precision == "bf16" else torch.float16


# -- optimizer and schedule ----------------------------------------------------------------------
def build_optimizer(model: TransferNet, cfg: RunConfig, steps_per_epoch: int):
    """Head at ``lr``, trainable body at ``lr * body_lr_mult``; no weight decay on biases and norms."""
    groups = []
    for part, lr in ((model.head, cfg.lr), (model.body, cfg.lr * cfg.body_lr_mult)):
        ps = [p for p in part.parameters() if p.requires_grad]
        decay = [p for p in ps if p.ndim > 1]
        other = [p for p in ps if p.ndim <= 1]
        groups += [g for g in ({"params": decay, "lr": lr, "weight_decay": cfg.weight_decay},
                               {"params": other, "lr": lr, "weight_decay": 0.0}) if g["params"]]
    if not groups:
        raise TLCoreError("Nothing would train: every layer group is frozen. Unfreeze at least the head.")
    # Fused kernels update every tensor in one pass: fewer tiny ops per step on CPU and CUDA.
    dev = next(p for g in groups for p in g["params"]).device
    fused = True if dev.type in ("cpu", "cuda") else None
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, fused=fused)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr, fused=fused)
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = min(total - 1, int(cfg.warmup_epochs * steps_per_epoch))
    S = torch.optim.lr_scheduler
    if cfg.scheduler == "onecycle":
        pct = cfg.warmup_epochs / cfg.epochs if cfg.warmup_epochs else 0.25
        sched = S.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=total,
                             pct_start=min(max(pct, 0.01), 0.99), cycle_momentum=cfg.optimizer == "sgd" and cfg.momentum > 0)
        return opt, sched
    if cfg.scheduler == "step":  # the tutorial's StepLR, counted in steps so it can step per batch
        main = S.StepLR(opt, step_size=cfg.step_size * steps_per_epoch, gamma=cfg.gamma)
    elif cfg.scheduler == "cosine":
        main = S.CosineAnnealingLR(opt, T_max=max(1, total - warm))
    else:
        main = S.ConstantLR(opt, factor=1.0, total_iters=0)
    if warm > 0:
        return opt, S.SequentialLR(opt, [S.LinearLR(opt, 0.01, 1.0, total_iters=warm), main], milestones=[warm])
    return opt, main


# -- the run ------------------------------------------------------------------------------------
class _Events:
    """Fan one call out to every callback."""

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)

    def __getattr__(self, hook):
        def fire(*a, **k):
            for cb in self.callbacks:
                getattr(cb, hook)(*a, **k)
        return fire


def load_run_data(cfg: RunConfig) -> ImageData:
    """The dataset as ``cfg`` names it, split as ``cfg`` says."""
    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed, val_fraction=cfg.val_fraction,
                        samples_per_class=cfg.samples_per_class)


def prepare_model(cfg: RunConfig, num_classes: int) -> TransferNet:
    model = create_backbone(cfg.backbone, weights=cfg.weights, num_classes=num_classes, image_size=cfg.image_size)
    freeze(model, preset=cfg.preset, frozen=cfg.frozen, train_bn=cfg.train_bn)
    return model


@torch.no_grad()
def compute_features(model: TransferNet, images: torch.Tensor, device: torch.device, *, batch_size: int,
                     amp: torch.dtype | None, stop: StopToken, progress=None) -> torch.Tensor | None:
    """Body features of every image (float32, on ``device``); None if a stop was requested."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        if stop.requested:
            return None
        batch = images[i:i + batch_size].to(device, non_blocking=True)
        n = len(batch)
        if n < batch_size and i > 0:  # one batch shape throughout: cuDNN plans each new shape anew
            batch = torch.cat([batch, batch[:1].expand(batch_size - n, -1, -1, -1)])
        x = prepare(batch, model.spec).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out.append(model.forward_features(x).float()[:n])
        if progress:
            progress(min(1.0, (i + batch_size) / len(images)))
    return torch.cat(out) if out else torch.zeros(0, model.num_features, device=device)


@dataclass
class LoopState:
    """Everything a paused run needs to go on exactly where it stopped (all on the CPU, picklable):
    weights, optimizer and schedule, the loader's and torch's random state, and the bookkeeping."""

    epochs_done: int
    model: dict
    optimizer: dict
    scheduler: dict
    scaler: dict | None
    loader_rng: torch.Tensor
    torch_rng: torch.Tensor
    cuda_rng: list | None
    best_loss: float
    best_state: dict | None
    best_epoch: int
    bad_epochs: int
    history: list
    seen: int
    train_seconds: float


def _cpu(tree):
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return {k: _cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cpu(v) for v in tree)
    return tree


def train(cfg: RunConfig, *, data: ImageData | None = None, callbacks: list[Callback] = (),
          stop: StopToken | None = None, out: str | Path | None = None,
          start: TransferNet | None = None, budget_s: float | None = None,
          resume: LoopState | None = None) -> RunResult:
    """Fine-tune as ``cfg`` says. ``data`` skips loading (the app passes what it has loaded).

    ``start`` continues from an existing model (a copy: the original is left as it was) with
    its own head, instead of building ``cfg.backbone``; ``cfg``'s freezing still applies.

    ``budget_s`` splits a long run into calls that each fit a time limit (ZeroGPU's): when the
    next epoch would end past the budget, the run pauses at the epoch boundary with status
    "paused" and ``result.resume``; ``train(cfg, data=data, resume=result.resume)`` goes on from
    there and ends exactly as one uninterrupted run would. Every call trains at least one epoch.
    """
    cfg.validate()
    ev, stop = _Events(callbacks), stop or StopToken()
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)

    # Loading: data, model, freezing. Errors here are the user's (bad names, missing files).
    ev.on_phase("loading")
    if data is None:
        data = load_run_data(cfg)
    device = pick_device(cfg.device)
    amp = autocast_dtype(device, cfg.precision)
    if start is not None:
        if start.num_classes != len(data.classes):
            raise TLCoreError(f"The starting model has {start.num_classes} classes; the data has {len(data.classes)}.")
        model = freeze(copy.deepcopy(start), preset=cfg.preset, frozen=cfg.frozen, train_bn=cfg.train_bn)
    else:
        model = prepare_model(cfg, len(data.classes))
    model = model.to(device)
    channels_last = True  # faster convolutions on CUDA and on CPU (oneDNN) alike
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    result = RunResult(model, cfg, list(data.classes), "stopped", "Stopped before training began.",
                       device=describe_device(device))
    # Loading took a while (pretrained weights): honour a stop sent meanwhile. A resumed run
    # instead goes on to its first step, which stops it keeping the epochs it already has.
    if stop.requested and resume is None:
        return _finish(result, ev, "stopped", "Stopped while loading, before training began.", t_start)

    # Feature cache: with a frozen body and no augmentation, every epoch would recompute the
    # same features. Compute them once; the head then trains on a (N, D) tensor in milliseconds.
    # Augmentation by default only when the body learns: a frozen body's features are what they
    # are, and without augmentation they can be cached (Teachable Machine's trade).
    use_aug = (not model.body_frozen) if cfg.augment is None else cfg.augment
    cached = cfg.feature_cache and not use_aug and model.body_frozen
    augment = Augment.for_data(data.hflip) if use_aug else None
    bs = min(cfg.batch_size, len(data.train))
    # A final batch of one would upset BatchNorm; a linear head has none, so it sees every image.
    drop_last = len(data.train) > bs and not model.body_frozen
    if cached:
        ev.on_phase("caching features", 0.0)
        feats = {}
        for name, split in (("train", data.train), ("val", data.val)):
            f = compute_features(model, split.images, device, batch_size=max(bs, 256), amp=amp,
                                 stop=stop if resume is None else StopToken(),
                                 progress=lambda p: ev.on_phase("caching features", p))
            if f is None:
                return _finish(result, ev, "stopped", "Stopped while caching features.", t_start)
            feats[name] = f
        loader = TensorLoader(feats["train"], data.train.labels, batch_size=bs, shuffle=True, drop_last=drop_last,
                              device=device, seed=cfg.seed)
        val_loader = TensorLoader(feats["val"], data.val.labels, batch_size=512, device=device)
        net = model.head
    else:
        loader = BatchLoader(data.train, model.spec, batch_size=bs, shuffle=True, augment=augment,
                             drop_last=drop_last, device=device, seed=cfg.seed, channels_last=channels_last)
        val_loader = BatchLoader(data.val, model.spec, batch_size=max(bs, 256), device=device,
                                 channels_last=channels_last)
        net = torch.compile(model) if cfg.compile else model
    steps = len(loader)
    opt, sched = build_optimizer(model, cfg, steps)
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    autocast = (lambda: torch.autocast(device.type, dtype=amp)) if amp is not None else contextlib.nullcontext
    trainable, total = model.count_parameters()
    if resume is None:
        ev.on_run_start(RunInfo(result.device, cfg.epochs, steps, len(data.train), len(data.val), len(data.test),
                                list(data.classes), trainable, total, cached))
    else:  # the paused run's exact state: same weights, momentum, schedule position and random streams
        model.load_state_dict(resume.model)
        opt.load_state_dict(resume.optimizer)
        sched.load_state_dict(resume.scheduler)
        if scaler is not None and resume.scaler:
            scaler.load_state_dict(resume.scaler)
        loader.generator.set_state(resume.loader_rng)
        torch.set_rng_state(resume.torch_rng)
        if resume.cuda_rng is not None and device.type == "cuda":
            torch.cuda.set_rng_state_all(resume.cuda_rng)

    # Training: epochs of steps. Loss and accuracy accumulate on the device; reading them is a
    # CPU-GPU sync point, so it happens only when an event is due.
    ev.on_phase("training")
    best_loss, best_state, bad_epochs = math.inf, None, 0
    seen, t_train = 0, time.perf_counter()
    first = 1
    if resume is not None:
        best_loss, best_state, bad_epochs = resume.best_loss, resume.best_state, resume.bad_epochs
        result.best_epoch, result.history = resume.best_epoch, list(resume.history)
        seen, t_train, first = resume.seen, t_train - resume.train_seconds, resume.epochs_done + 1
    t_call = time.perf_counter()
    status, message = "completed", ""
    try:
        for epoch in range(first, cfg.epochs + 1):
            spent = time.perf_counter() - t_call
            if budget_s is not None and epoch > first and spent + spent / (epoch - first) > budget_s:
                status = "paused"
                break
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            n_epoch, last_event = 0, time.perf_counter()
            for step, (x, y) in enumerate(loader, 1):
                if stop.requested:
                    status, message = "stopped", f"Stopped at epoch {epoch}, step {step}."
                    break
                with autocast():
                    logits = net(x)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    opt.step()
                else:  # fp16 needs loss scaling; bf16 and fp32 do not
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                sched.step()
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
                n_epoch += len(y)
                seen += len(y)
                now = time.perf_counter()
                if now - last_event >= STEP_EVENT_EVERY_S or step == steps:
                    last_event = now
                    mean_loss = loss_sum.item() / n_epoch
                    if not math.isfinite(mean_loss):
                        raise _Diverged(epoch, step)
                    rate = seen / (now - t_train)
                    left = (cfg.epochs - epoch) * steps + (steps - step)
                    ev.on_step(StepEvent(epoch, step, steps, mean_loss, correct.item() / n_epoch,
                                         opt.param_groups[0]["lr"], rate, left * bs / rate))
            if status == "stopped":
                break
            # Validation: the loss decides which weights are kept and when to stop early.
            val_loss, val_acc = _validate(net, val_loader, amp, device)
            if not math.isfinite(val_loss):
                raise _Diverged(epoch, steps)
            best = val_loss < best_loss
            if best:
                best_loss, bad_epochs, result.best_epoch = val_loss, 0, epoch
                best_state = _cpu(model.state_dict())
            else:
                bad_epochs += 1
            now = time.perf_counter()
            rate = seen / (now - t_train)
            e = EpochEvent(epoch, cfg.epochs, loss_sum.item() / max(n_epoch, 1), correct.item() / max(n_epoch, 1),
                           val_loss, val_acc, opt.param_groups[0]["lr"], rate, now - t_train,
                           (now - t_train) / epoch * (cfg.epochs - epoch), best)
            result.history.append(e)
            ev.on_epoch_end(e)
            if cfg.early_stopping and bad_epochs >= cfg.early_stopping and epoch < cfg.epochs:
                status = "early-stopped"
                message = f"Stopped early after epoch {epoch}: no better validation loss for {bad_epochs} epochs."
                break
    except _Diverged as d:
        status = "failed"
        message = (f"The training loss became NaN or infinite at epoch {d.epoch}, step {d.step}. "
                   f"Try a lower learning rate (it was {cfg.lr:g}).")
    except torch.OutOfMemoryError:
        status = "failed"
        message = f"Out of GPU memory at batch size {bs}. Try a smaller batch size or a smaller image size."
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result.images_per_second = seen / max(time.perf_counter() - t_train, 1e-9)
    if status == "paused":
        result.resume = LoopState(
            epoch - 1, _cpu(model.state_dict()), _cpu(opt.state_dict()), sched.state_dict(),
            scaler.state_dict() if scaler is not None else None, loader.generator.get_state(),
            torch.get_rng_state(), torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            best_loss, best_state, result.best_epoch, bad_epochs, list(result.history), seen,
            time.perf_counter() - t_train)
        model.to("cpu")
        result.status, result.seconds = "paused", time.perf_counter() - t_start
        result.message = f"Paused after epoch {epoch - 1} of {cfg.epochs}; the next call goes on from there."
        return result  # no run_end: the run is not over

    # Keep the best epoch's weights (or the last ones, if no epoch finished validation).
    if best_state is not None:
        model.load_state_dict(best_state)
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    model.classes = list(data.classes)
    result.model = model
    if status == "completed":
        message = f"Completed {len(result.history)} epochs; kept epoch {result.best_epoch} (best validation loss)."
    elif status == "stopped" and result.best_epoch:
        message += f" Kept epoch {result.best_epoch}, the best so far."
    if status in ("completed", "early-stopped") or (status != "stopped" and best_state is not None):
        # Evaluating: the test split, never seen while choosing weights.
        ev.on_phase("evaluating")
        if cached and best_state is not None:
            f = compute_features(model.to(device), data.test.images, device, batch_size=256, amp=amp, stop=stop)
            model.to("cpu")
            if f is not None:
                with torch.no_grad():
                    probs = model.head.to(device)(f).float().softmax(1).cpu()
                model.to("cpu")
                result.test = evaluate_probs(data.test.labels.numpy(), probs.numpy(), data.classes)
        else:
            try:
                result.test = evaluate(model.to(device), data.test.images, data.test.labels, data.classes,
                                       device=device, autocast_dtype=amp, stop=stop)
            except StopRequested:
                pass
            model.to("cpu")
        if result.test is None and stop.requested:
            status = "stopped"
            message = (f"Stopped while evaluating: epoch {result.best_epoch} is kept, "
                       f"not measured on the test split.")
    # The saved metrics.json carries the summary: its status, message and time so far must be
    # this run's, not the "stopped before training" the result was created with.
    result.status, result.message, result.seconds = status, message, time.perf_counter() - t_start
    if out is not None and result.history:
        ev.on_phase("saving")
        from .checkpoints import save_replay, save_run

        # What actually ran, not "automatic": evaluation on another machine then reproduces it.
        saved = {**cfg.to_dict(), "augment": use_aug, "precision_used": PRECISION_NAMES[amp]}
        result.checkpoint = save_run(out, model, data.classes, config=saved,
                                     metrics=_metrics(result, data))
        save_replay(out, data)
    return _finish(result, ev, status, message, t_start)


class _Diverged(Exception):
    def __init__(self, epoch: int, step: int):
        self.epoch, self.step = epoch, step


@torch.no_grad()
def _validate(net, loader, amp, device) -> tuple[float, float]:
    was = net.training
    net.eval()
    loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for x, y in loader:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = net(x).float()
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        n += len(y)
    net.train(was)
    return (loss.item() / n, correct.item() / n) if n else (math.nan, math.nan)


def _metrics(result: RunResult, data: ImageData) -> dict:
    return {
        "summary": {k: v for k, v in result.summary().items() if k != "checkpoint"},
        "history": [vars(e) for e in result.history],
        "test": result.test.to_dict() if result.test else None,
        "dataset": data.describe(),
    }


def _finish(result: RunResult, ev, status: str, message: str, t_start: float) -> RunResult:
    result.status, result.message = status, message
    result.seconds = time.perf_counter() - t_start
    ev.on_run_end(RunEnd(status, message, result.best_epoch, list(result.history)))
    return result
