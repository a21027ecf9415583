"""The training loop: events, stop, NaN, the feature cache, early stopping, config validation.

Faults are brought in through the loop's own seams (a starting model, an objective, a
callback), never by patching its internals.
"""
from __future__ import annotations

import math

import pytest
import torch

from conftest import quick
from tlcore.config import RunConfig
from tlcore.data import ImageData, Split
from tlcore.errors import TLCoreError
from tlcore.events import Callback, Recorder, StopToken
from tlcore.models import create_backbone
from tlcore.training.objective import Objective
from tlcore.training.optim import build_optimizer
from tlcore.training.train import train
from tlcore.training.callbacks import run_callbacks
from tlcore.training.loop import BestEpoch, Trainer
from tlcore.training.result import Status


def test_events_fire_in_order_and_the_run_learns(digits):
    rec = Recorder()
    r = train(quick(epochs=8, batch_size=32), data=digits, callbacks=[rec])
    kinds = [k for k, _ in rec.events]
    assert kinds[0] == "phase" and rec.events[0][1] == ("loading", None)
    assert kinds.index("run_start") < kinds.index("step") < kinds.index("epoch_end")
    assert kinds[-1] == "run_end" and ("phase", ("evaluating", None)) in rec.events
    epochs = [e for k, e in rec.events if k == "epoch_end"]
    assert [e.epoch for e in epochs] == list(range(1, 9))
    steps = [e for k, e in rec.events if k == "step"]
    assert all(s.epoch >= p.epoch for p, s in zip(steps, steps[1:]))
    assert all(s.images_per_second > 0 and s.eta_seconds >= 0 for s in steps)
    assert epochs[-1].val_accuracy > 0.8 and r.test.accuracy > 0.8  # 8x8 digits are easy
    assert r.status == "completed" and 1 <= r.best_epoch <= 8
    end = rec.events[-1][1]
    assert end.status == "completed" and len(end.history) == 8


def test_a_stop_request_is_honoured_within_one_step(digits):
    stop = StopToken()

    class StopAtFirstStep(Callback):
        steps = 0
        step_interval_s = 0.0  # an event every step

        def on_step(self, trainer, e):
            StopAtFirstStep.steps += 1
            stop.stop()

    r = train(quick(epochs=50), data=digits, callbacks=[StopAtFirstStep()], stop=stop)
    assert r.status == "stopped" and StopAtFirstStep.steps == 1
    assert r.history == [] and "Stopped at epoch 1, step 2" in r.message
    assert r.model is not None and r.test is None


def test_stop_keeps_the_best_epoch(digits):
    stop = StopToken()

    class StopAfterTwoEpochs(Callback):
        def on_epoch_end(self, trainer, e):
            if e.epoch == 2:
                stop.stop()

    r = train(quick(epochs=20), data=digits, callbacks=[StopAfterTwoEpochs()], stop=stop)
    assert r.status == "stopped" and len(r.history) == 2 and r.best_epoch in (1, 2)
    assert "the best so far" in r.message


class StopAfterEpoch(Callback):
    """A callback that acts: ends the run after ``epoch`` with ``status``, as early stopping does."""

    def __init__(self, epoch: int, status: Status):
        self.epoch, self.status = epoch, status

    def on_epoch_end(self, trainer, e):
        if e.epoch == self.epoch:
            trainer.stop_run(self.status, f"Enough after epoch {e.epoch}.")


@pytest.mark.parametrize("status", [Status.STOPPED, Status.EARLY_STOPPED])
def test_a_custom_callback_can_stop_the_loop(digits, status):
    rec = Recorder()
    r = train(quick(epochs=10), data=digits, callbacks=[StopAfterEpoch(2, status), rec])
    assert r.status is status and len(r.history) == 2 and r.message.startswith("Enough after epoch 2.")
    assert [e.epoch for k, e in rec.events if k == "epoch_end"] == [1, 2] and r.best_epoch in (1, 2)
    assert rec.events[-1][1].status is status  # run_end says so too
    # An early stop is a finished run: its kept epoch is tested; a stop on request is not.
    assert (r.test is not None) is (status is Status.EARLY_STOPPED)


def test_a_nan_loss_stops_with_advice(digits):
    poisoned = create_backbone("lenet5", num_classes=10)
    with torch.no_grad():
        poisoned.head.weight.fill_(math.inf)  # every logit becomes inf or nan
    r = train(quick(lr=0.5), data=digits, start=poisoned)
    assert r.status == "failed"
    assert "NaN or infinite at epoch 1" in r.message and "learning rate 0.5 is too high. Try 0.05" in r.message


def test_the_feature_cache_gives_the_slow_paths_result(digits):
    """Frozen body, no augmentation: cached features must train the same head as recomputing them."""
    cfg = dict(preset="linear-probe", augment=False, epochs=3, lr=0.05)
    fast, slow = Recorder(), Recorder()
    a = train(quick(feature_cache=True, **cfg), data=digits, callbacks=[fast])
    b = train(quick(feature_cache=False, **cfg), data=digits, callbacks=[slow])
    assert [e for k, e in fast.events if k == "run_start"][0].feature_cache
    assert not [e for k, e in slow.events if k == "run_start"][0].feature_cache
    assert torch.allclose(a.model.head.weight, b.model.head.weight, atol=1e-5)
    for x, y in zip(a.history, b.history):
        assert x.val_loss == pytest.approx(y.val_loss, rel=1e-5)
    assert a.test.probs == pytest.approx(b.test.probs, abs=1e-5)
    for k, v in b.model.body.state_dict().items():  # and the body never moved
        assert torch.equal(v, a.model.body.state_dict()[k])


def test_early_stopping_counts_epochs_since_the_best():
    """The rule on its own: losses 1.0, 0.5, 0.6, 0.7 with patience 2 keep epoch 2 and stop after 4."""
    best, model = BestEpoch(patience=2), torch.nn.Linear(2, 2)
    spent = []
    for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7, 0.8, 0.9], 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        best.update(epoch, loss, model)
        spent.append(best.patience_spent)
    assert spent == [False, False, False, True, True, True] and best.epoch == 2
    assert torch.equal(best.weights["weight"], torch.full((2, 2), 2.0))  # epoch 2's weights, kept


def test_the_best_epochs_copy_takes_what_changed_and_shares_what_did_not():
    """A frozen layer is copied once; a trained one and BatchNorm's statistics every better
    epoch, and a layer thawed meanwhile from then on; each snapshot equals a full copy."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    best, snapshots = BestEpoch(), []
    for epoch in range(1, 5):
        if epoch == 4:  # thawed, as gradual unfreezing does
            model[0].requires_grad_(True)
            opt.add_param_group({"params": list(model[0].parameters())})
        opt.zero_grad()
        model(torch.randn(8, 4)).sum().backward()  # BatchNorm's running statistics move too
        opt.step()
        best.update(epoch, 1.0 / epoch, model)
        snapshots.append(best.weights)
        full = {k: v.detach().clone() for k, v in model.state_dict().items()}
        assert all(torch.equal(best.weights[k], v) for k, v in full.items())
    first, last = snapshots[0], snapshots[2]
    assert last["0.weight"] is first["0.weight"] and last["0.bias"] is first["0.bias"]
    assert not torch.equal(last["2.weight"], first["2.weight"])
    assert not torch.equal(last["1.running_mean"], first["1.running_mean"])
    assert not torch.equal(snapshots[3]["0.weight"], first["0.weight"])


def test_early_stopping_keeps_the_best_epoch(digits):
    """Validation labels shifted by one class: the better the network learns the digits, the
    worse its validation loss, so the first epochs are the best and the run stops early."""
    wrong = Split(digits.val.images, (digits.val.labels + 1) % 10)
    data = ImageData("digits, validation mislabelled", digits.classes, digits.train, wrong, digits.test)
    r = train(quick(epochs=20, early_stopping=2, scheduler="constant", lr=0.05), data=data)
    assert r.status == "early-stopped" and len(r.history) == r.best_epoch + 2 < 20
    assert "no better validation loss for 2 epochs" in r.message
    assert r.history[r.best_epoch - 1].val_loss == min(e.val_loss for e in r.history)


@pytest.mark.parametrize("scheduler", ["constant", "step", "cosine", "onecycle"])
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_every_schedule_and_optimizer(scheduler, optimizer):
    from tlcore.models import create_backbone, freeze

    model = freeze(create_backbone("resnet18", num_classes=3, image_size=32), preset="finetune-top-1")
    cfg = RunConfig(scheduler=scheduler, optimizer=optimizer, lr=0.1, body_lr_mult=0.1, epochs=10, step_size=2,
                    warmup_epochs=1 if scheduler == "cosine" else 0)
    opt, sched = build_optimizer(model, cfg, steps_per_epoch=5)
    lrs = {id(g): g["lr"] for g in opt.param_groups}
    body_params = {id(p) for p in model.body.parameters()}
    for g in opt.param_groups:
        is_body = any(id(p) in body_params for p in g["params"])
        assert all(p.requires_grad for p in g["params"])
        assert (g["weight_decay"] == 0) == all(p.ndim <= 1 for p in g["params"])
        # OneCycle starts low and peaks at max_lr; the others start at the group's own rate.
        assert g["max_lr" if scheduler == "onecycle" else "initial_lr"] == pytest.approx(0.01 if is_body else 0.1)
    seen = []
    for _ in range(50):
        opt.step()
        sched.step()
        seen.append(opt.param_groups[0]["lr"])
    if scheduler == "step":  # the tutorial's StepLR: x0.1 every 2 epochs = 10 steps
        assert seen[8] == pytest.approx(lrs[id(opt.param_groups[0])]) and seen[9] == pytest.approx(seen[8] * 0.1)
    if scheduler in ("cosine", "onecycle"):
        assert seen[-1] < max(seen) / 10
    if scheduler == "constant":
        assert len(set(seen)) == 1
    n_trainable = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_trainable == model.count_parameters()[0]


@pytest.mark.parametrize("field,value,match", [
    ("lr", 0, r"Learning rate \(lr\) must be a number > 0"), ("lr", -1, r"Learning rate \(lr\) must be"),
    ("lr", float("nan"), r"Learning rate \(lr\) must be"),
    ("lr", 100, "<= 10"), ("epochs", 0, "Epochs must be a whole number > 0"), ("epochs", 1000, "<= 200"),
    ("epochs", 2.5, "whole number"), ("batch_size", 0, "Batch size"), ("batch_size", 10**6, "<= 4096"),
    ("momentum", 1.5, "momentum"), ("val_fraction", 1.0, "val_fraction"), ("label_smoothing", 0.9, "Label smoothing"),
    ("optimizer", "adam", "Unknown optimizer 'adam'. Valid optimizers: 'sgd', 'adamw'"),
    ("scheduler", "linear", "Valid schedulers: 'constant', 'step', 'cosine', 'onecycle'"),
    ("device", "tpu", "Unknown device 'tpu'"), ("gamma", 0, "gamma"), ("augment", "yes", "augment"),
    ("seed", -1, "Seed"), ("early_stopping", -1, "early_stopping"), ("image_size", 4, "image_size"),
])
def test_runconfig_names_the_bad_value(field, value, match):
    with pytest.raises(TLCoreError, match=match):
        RunConfig(**{field: value}).validate()


def test_runconfig_round_trips_and_rejects_unknown_keys():
    cfg = RunConfig(lr=0.3, frozen=["conv1"], preset=None)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(TLCoreError, match="Unknown config keys: lrate"):
        RunConfig.from_dict({"lrate": 1})


def test_unavailable_device_is_a_clear_error(digits):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(TLCoreError, match="device 'cuda' is not available here"):
        train(quick(device="cuda"), data=digits)


class StopAtPhase(Callback):
    """Requests a stop the moment a phase begins; records whatever happens after."""

    def __init__(self, phase: str, stop: StopToken):
        self.phase, self.stop, self.after = phase, stop, []

    def on_phase(self, trainer, phase, fraction=None):
        if phase == self.phase and not self.stop.requested:
            self.stop.stop()
        elif self.stop.requested:
            self.after.append(phase)

    def on_step(self, trainer, e):
        if self.stop.requested:
            self.after.append("step")


@pytest.mark.parametrize("phase,cfg,says", [
    ("loading", {}, "Stopped while loading"),
    ("caching features", {"preset": "linear-probe", "augment": False}, "Stopped while caching features"),
    ("training", {}, "Stopped at epoch 1, step 1"),
    ("evaluating", {}, "Stopped while evaluating: epoch 2 is kept"),
    ("evaluating", {"preset": "linear-probe", "augment": False}, "Stopped while evaluating"),
])
def test_stop_works_in_every_phase(digits, phase, cfg, says):
    stop = StopToken()
    watcher = StopAtPhase(phase, stop)
    r = train(quick(**cfg), data=digits, callbacks=[watcher], stop=stop)
    assert r.status == "stopped" and says in r.message, r.message
    assert "step" not in watcher.after and "evaluating" not in watcher.after  # no work after the stop
    assert r.test is None and r.model is not None
    with torch.no_grad():  # whatever was kept is a usable model
        s = r.model.spec
        assert torch.isfinite(r.model(torch.zeros(1, s.channels, s.size, s.size))).all()


class OutOfMemoryInEpoch3(Objective):
    """The loss of a run that needs more GPU memory from its third epoch on: it raises the real
    exception type torch raises on CUDA, as a forward or backward pass would."""

    def __init__(self, steps_per_epoch: int, **kw):
        super().__init__(**kw)
        self.calls, self.limit = 0, 2 * steps_per_epoch

    def __call__(self, logits, y, x=None):
        self.calls += 1
        if self.calls > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().__call__(logits, y, x)


def test_running_out_of_gpu_memory_stops_with_advice_and_keeps_the_last_good_model(digits):
    steps_per_epoch = math.ceil(len(digits.train) / 64) - 1  # drop_last
    cfg = quick(epochs=5, scheduler="constant", lr=0.05, batch_size=64)
    trainer = Trainer(cfg, callbacks=run_callbacks(cfg),
                      objective=OutOfMemoryInEpoch3(steps_per_epoch, label_smoothing=cfg.label_smoothing))
    assert trainer.setup(digits)
    trainer.fit()
    r = trainer.finish()
    assert r.status == "failed" and "Out of GPU memory at batch size 64" in r.message
    assert "smaller batch size" in r.message
    assert len(r.history) == 2 and r.best_epoch in (1, 2)
    assert r.test is not None and r.test.accuracy > 0.5  # the best epoch before the fault, evaluated


@pytest.mark.parametrize("cfg", [
    {"augment": True, "scheduler": "onecycle"},  # random augmentation and a per-step schedule carry over
    {"preset": "linear-probe", "augment": False, "scheduler": "step", "step_size": 1, "optimizer": "adamw"},
], ids=["augmented-onecycle", "feature-cache-step-adamw"])
def test_a_run_split_into_budgeted_calls_ends_exactly_as_one_run(digits, cfg):
    """ZeroGPU's way: each call trains until its time budget, pauses at an epoch boundary, and the
    next call resumes. budget_s=0 makes every call one epoch: four calls for four epochs."""
    c = quick(epochs=4, **cfg)
    whole = train(c, data=digits)
    rec, calls = Recorder(), 0
    r = train(c, data=digits, budget_s=0, callbacks=[rec])
    while r.status == "paused":
        calls += 1
        assert r.resume.epochs_done == calls and "Paused after epoch" in r.message
        r = train(c, data=digits, budget_s=0, resume=r.resume, callbacks=[rec])
    assert calls == 3 and r.status == "completed"
    assert [e.val_loss for e in r.history] == [e.val_loss for e in whole.history]
    assert r.best_epoch == whole.best_epoch and r.test.accuracy == whole.test.accuracy
    a, b = whole.model.state_dict(), r.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    kinds = [k for k, _ in rec.events]
    assert kinds.count("run_start") == 1 and kinds.count("run_end") == 1 and kinds.count("epoch_end") == 4


def test_a_budget_lets_several_epochs_into_one_call(digits):
    r = train(quick(epochs=6), data=digits, budget_s=3600)
    assert r.status == "completed" and len(r.history) == 6


def test_step_events_count_the_steps_of_the_whole_run(digits):
    """``done`` and ``fraction`` are computed once, in the event (the CLI bar, the Train and Draw tabs read them)."""
    rec = Recorder()
    rec.step_interval_s = 0.0  # every step
    train(quick(epochs=3), data=digits, callbacks=[rec])
    steps = [e for k, e in rec.events if k == "step"]
    total = 3 * steps[0].steps
    assert [s.done for s in steps] == list(range(1, total + 1))
    assert [s.fraction for s in steps] == [i / total for i in range(1, total + 1)] and steps[-1].fraction == 1.0


def test_a_runs_test_metrics_are_what_evaluate_finds_in_its_saved_files(digits, tmp_path):
    """One evaluation path, a feature-cache run included, in the precision the machine picks (bf16
    where the CPU has AMX): ``tlcore evaluate`` on the saved run reproduces every probability."""
    import numpy as np

    from tlcore.runs.checkpoints import load_run
    from tlcore.device import pick_device, run_autocast_dtype
    from tlcore.insight.evaluate import evaluate

    r = train(quick(preset="linear-probe", augment=False, precision="auto"), data=digits, out=tmp_path / "run")
    model, meta = load_run(tmp_path / "run")
    dev = pick_device("auto")
    again = evaluate(model.to(dev), digits.test.images, digits.test.labels, digits.classes, device=dev,
                     autocast_dtype=run_autocast_dtype(dev, meta["run"]))
    assert np.array_equal(again.probs, r.test.probs) and again.accuracy == r.test.accuracy


@pytest.mark.parametrize("epochs", [1, 2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("warmup", [0.0, 1.0])
def test_a_onecycle_run_of_a_few_steps_trains(epochs, warmup):
    """Two images a class is one step an epoch: OneCycleLR divided by a phase of length zero
    (1 step; 4 steps x a quarter) and the run ended in a ZeroDivisionError."""
    r = train(RunConfig(dataset="digits", samples_per_class=2, epochs=epochs, scheduler="onecycle",
                        warmup_epochs=min(warmup, epochs), batch_size=128))
    assert r.status.value == "completed" and len(r.history) == epochs
    assert all(math.isfinite(e.lr) and e.lr > 0 for e in r.history)
