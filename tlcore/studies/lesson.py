"""The lesson: transfer learning in seven steps, each measured here and told from its own numbers.

1. *The source*: the bundled MNIST LeNet-5 and how well it reads MNIST (its replay sample, and
   MNIST's whole test set when the data folder holds it).
2. *A new small task*: digits at 5 per class, from MNIST and from scratch, both fine-tuned whole;
   the head start after one epoch.
3. *How much data until scratch catches up*: a data-efficiency curve, as many shot counts as
   about a minute allows at the pace step 2 measured.
4. *What fine-tuning forgets*: :func:`tlcore.studies.forgetting.forgetting_demo`.
5. *Why it works*: the digits in the feature space of random weights, of the MNIST body, and of
   step 4's fine-tuned body (5-NN accuracy).
6. *The images nobody labelled*: digits with 1 and 5 labels per class and the rest without; the MNIST
   body's features label the rest (label spreading), against the probe on the labelled ones alone.
7. *Your turn*: no computation.

Every conclusion is written from its step's numbers, which ``to_dict`` carries beside it
(``python -m tlcore lesson --json``). Works offline: digits and the bundled model are shipped.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..data import ImageData, load_dataset
from ..device import cpu_threads
from ..errors import TLCoreError
from ..events import StopToken
from ..insight.feature_space import feature_space
from ..insight.predict import predict_probs
from ..paths import BUNDLED_MNIST
from ..runs.checkpoints import load_replay, load_run
from ..runs.folder import read_metrics
from . import lesson_words as words
from . import verdict
from .compare import strategy_config, transfer_vs_scratch
from .curve import SEMI, Point, curve, shots_of
from .forgetting import forgetting_demo
from .progress import Clock, planned

SHOTS = 5  # per class in step 2: where a source matters
EXAMPLES = 10  # the source's digits step 1 keeps to show
CURVE_SECONDS = 60.0  # step 3's size, at the pace step 2 measured
CURVE_SHOTS = (None, 20, 50, 10, 2)  # added in this order while the minute allows ("all" first: it is the end)
# Every run in fp32: the same numbers on every CPU. (With bf16 autocast, on a CPU with AMX, scratch
# at its suggested lr 0.1 collapsed on 20 per class, seed 0: 66.0% against 92.8% in fp32.)
PRECISION = dict(precision="fp32")
# --quick (tests): two epochs a run, the curve and the forgetting runs on 20 per class. Its
# conclusions describe those runs, whatever they show; the real lesson uses the suggested budgets.
QUICK, QUICK_SHOTS = dict(epochs=2, early_stopping=0), 20
# LeNet-5's layers are too small to share among threads: on this 2-core machine, busy (load 4-5),
# step 2's fine-tune took 3.9 s on one thread and 37 s on two (the same weights, fp32).
THREADS = 1
UNLABELLED_SHOTS = (1, 5)  # labelled per class in step 6; the rest of the training split goes without labels
STEPS = ("the source", "a new small task", "how much data", "what fine-tuning forgets", "why it works",
         "the images nobody labelled", "your turn")


@dataclass
class Step:
    """One step: what it measured and what that says."""

    name: str
    seconds: float
    numbers: dict
    conclusion: str

    def to_dict(self) -> dict:
        return {"name": self.name, "seconds": round(self.seconds, 1), "numbers": self.numbers,
                "conclusion": self.conclusion}


@dataclass
class Lesson:
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0  # the whole lesson, loading included
    stopped: bool = False

    def to_dict(self) -> dict:
        return {"steps": [s.to_dict() for s in self.steps], "seconds": round(self.seconds, 1),
                **({"stopped": True} if self.stopped else {})}


@dataclass
class _Context:
    """What the steps share: the data, the settings, and what earlier steps measured."""

    digits: ImageData
    quick: bool
    data_dir: str | None
    stop: StopToken
    say: Callable[[str], None]
    done: dict = field(default_factory=dict)  # step name -> its study's result

    @property
    def fixed(self) -> dict:
        return {**PRECISION, **(QUICK if self.quick else {})}


class _Stopped(Exception):
    pass


def lesson(*, quick: bool = False, data_dir: str | None = None, progress: Callable[[str], None] | None = None,
           stop: StopToken | None = None, threads: int | None = THREADS) -> Lesson:
    """Run the seven steps. ``progress`` hears a line as each step and each of its runs starts;
    ``quick``: two epochs a run (for tests; the conclusions then describe those runs).
    ``threads``: torch's CPU threads while the lesson runs (the setting is the process's; it is
    put back after); None leaves it as it is."""
    return _lesson(LessonRun(quick=quick, data_dir=data_dir, progress=progress, stop=stop, threads=threads))


def _lesson(run: LessonRun) -> Lesson:
    t0 = time.perf_counter()
    for i in range(1, len(STEPS) + 1):
        if run.step(i) is None:
            break
    out = Lesson(steps=list(run.steps), stopped=run.stopped)
    out.seconds = time.perf_counter() - t0
    return out


class LessonRun:
    """A lesson taken one step at a time (the app's Lesson tab: a button a step). Step ``i`` needs
    the steps before it and runs whichever of them are not done yet; each step runs once.
    ``done`` keeps the studies themselves (the duel, the curve, the forgetting demo, the feature
    space), for the charts a step shows beside its sentence."""

    def __init__(self, *, quick: bool = False, data_dir: str | None = None,
                 progress: Callable[[str], None] | None = None, stop: StopToken | None = None,
                 threads: int | None = THREADS):
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise TLCoreError(f"threads must be a whole number >= 1 (or None), got {threads!r}.")
        self.threads = threads
        self.ctx = _Context(load_dataset("digits"), quick, data_dir, stop or StopToken(), progress or (lambda line: None))
        self.steps: list[Step] = []
        self.stopped = False

    @property
    def done(self) -> dict:
        return self.ctx.done

    def use(self, *, stop: StopToken | None = None, progress: Callable[[str], None] | None = None) -> None:
        """The next steps hear this Stop and report to this line (each of the app's clicks is a job of its own)."""
        if stop is not None:
            self.ctx.stop = stop
        if progress is not None:
            self.ctx.say = progress
        self.stopped = False

    def step(self, i: int) -> Step | None:
        """Step ``i`` (1-based) and, first, the steps before it not run yet; None if stopped on the way."""
        if not 1 <= i <= len(STEPS):
            raise TLCoreError(f"The lesson has steps 1 to {len(STEPS)}, got {i!r}.")
        with cpu_threads(self.threads):
            while len(self.steps) < i:
                if not self._next():
                    return None
        return self.steps[i - 1]

    def _next(self) -> bool:
        k, ctx = len(self.steps), self.ctx
        if ctx.stop.requested:
            self.stopped = True
            return False
        ctx.say(f"step {k + 1} of {len(STEPS)}: {STEPS[k]}")
        t = time.perf_counter()
        try:
            numbers = _PLAN[k][0](ctx)
        except _Stopped:
            self.stopped = True
            return False
        self.steps.append(Step(STEPS[k], time.perf_counter() - t, numbers, _PLAN[k][1](numbers)))
        return True

    def state_dict(self) -> dict:
        return {"steps": [s.to_dict() for s in self.steps], "stopped": self.stopped, "quick": self.ctx.quick}


def _study_line(ctx: _Context):
    return lambda p: ctx.say(f"  {p.text}")


def _source(ctx: _Context) -> dict:
    """The bundled MNIST model on its replay sample's test images, and on MNIST's test set when present."""
    model, _ = load_run(BUNDLED_MNIST)
    replay = load_replay(BUNDLED_MNIST, model.classes)
    if replay is None:
        raise TLCoreError(f"{BUNDLED_MNIST} has no readable replay sample: the lesson needs it for the source task.")
    splits = (read_metrics(BUNDLED_MNIST).get("dataset") or {}).get("splits") or {}
    shown = replay.test.images[:EXAMPLES]  # a few of its digits and how it reads them, for the app to show
    ctx.done["source examples"] = (shown, predict_probs(model.eval(), shown).argmax(1), replay.test.labels[:EXAMPLES])
    numbers = {"model": model.backbone, "trained_on": "MNIST", "train_images": splits.get("train"),
               "replay_images": len(replay.test), "replay_accuracy": _accuracy(model, replay.test),
               "mnist_test_images": None, "mnist_test_accuracy": None}
    try:
        mnist = load_dataset("mnist", data_dir=ctx.data_dir, download=False)
    except TLCoreError:  # offline without MNIST: the replay sample speaks for it
        return numbers
    numbers.update(mnist_test_images=len(mnist.test), mnist_test_accuracy=_accuracy(model, mnist.test))
    return numbers


def _accuracy(model, split) -> float:
    return float((predict_probs(model.eval(), split.images).argmax(1) == split.labels).float().mean())


def _small_task(ctx: _Context) -> dict:
    """Digits at SHOTS per class: from MNIST and from scratch, every layer training in both."""
    duel = transfer_vs_scratch(shots_of(ctx.digits, SHOTS, seed=0), backbone="lenet5", weights=str(BUNDLED_MNIST),
                               preset="full", stop=ctx.stop, progress=_study_line(ctx), **ctx.fixed)
    if not duel.finished:
        raise _Stopped()
    ctx.done["duel"] = duel
    head, (side, key, _) = duel.head_start(), duel.verdict()
    t, s = duel.transfer, duel.scratch
    return {"per_class": SHOTS, "transfer_trains": duel.setup.transfer_trains, "scratch_trains": "every layer",
            "after_one_epoch": {"transfer": head.after_one[0], "scratch": head.after_one[1]},
            "test": {"transfer": t.test.accuracy, "scratch": s.test.accuracy},
            "gap_points": round(100 * (t.test.accuracy - s.test.accuracy), 1), "ahead": side, "cause": key,
            "level": head.level, "epochs_to_level": {"transfer": head.epochs[0], "scratch": head.epochs[1]},
            "epochs": {"transfer": len(t.history), "scratch": len(s.history)},
            "seconds": {"transfer": round(t.seconds, 1), "scratch": round(s.seconds, 1)},
            "source_kept": {"before": t.source_accuracy_before, "after": t.source_accuracy_after},
            "source_fit": duel.setup.fit.to_dict() if duel.setup.fit else None}


def _how_much_data(ctx: _Context) -> dict:
    """Fine-tune and scratch at more shot counts, as many as about a minute allows."""
    duel, digits = ctx.done["duel"], ctx.digits
    shots = [QUICK_SHOTS] if ctx.quick else curve_shots(ctx, CURVE_SECONDS)
    c = curve(digits, backbone="lenet5", weights=str(BUNDLED_MNIST), shots=shots, seeds=1,
              strategies=("fine-tune", "scratch"), stop=ctx.stop, progress=_study_line(ctx), **ctx.fixed)
    if c.stopped:
        raise _Stopped()
    ctx.done["curve"] = c
    n = len(shots_of(digits, SHOTS, seed=0).train)
    c.points[:0] = [Point(strategy, SHOTS, 0, r.test.accuracy, r.seconds, len(r.history), n)
                    for strategy, r in (("fine-tune", duel.transfer), ("scratch", duel.scratch))]
    rows = sorted(c.results(), key=lambda r: float("inf") if r["shots"] is None else r["shots"])
    per_class = list(dict.fromkeys("all" if r["shots"] is None else r["shots"] for r in rows))
    acc = {("all" if r["shots"] is None else r["shots"], r["strategy"]): r["accuracy"] for r in rows}
    ft, sc = [acc[(k, "fine-tune")] for k in per_class], [acc[(k, "scratch")] for k in per_class]
    numbers = {"per_class": per_class, "all_per_class": round(len(digits.train) / len(digits.classes), 1),
               "fine-tune": ft, "scratch": sc, "within_points": words.WITHIN,
               "catches_up_at": words.catches_up_at(per_class, ft, sc),
               "budget_seconds": None if ctx.quick else CURVE_SECONDS, "sentence": c.sentence()}
    ctx.done["how much data"] = numbers
    return numbers


def curve_shots(ctx: _Context, budget_s: float) -> list[int | None]:
    """The shot counts (besides step 2's) whose runs fit in ``budget_s`` at the pace step 2's two
    runs measured; "all" always (the curve's end: where scratch has the most data)."""
    duel, digits = ctx.done["duel"], ctx.digits
    sizes = dict(n_val=len(digits.val), n_test=len(digits.test))
    n5 = SHOTS * len(digits.classes)
    base = [planned("fine-tune", "fine-tune", duel.transfer.config, n_train=n5, **sizes),
            planned("scratch", "scratch", duel.scratch.config, n_train=n5, **sizes)]
    clock = Clock(base, took={0: duel.transfer.seconds, 1: duel.scratch.seconds})
    chosen, total = [], 0.0
    for k in CURVE_SHOTS:
        n = len(shots_of(digits, k, seed=0).train)
        cost = sum(clock.predict(planned(s, s, strategy_config(s, dataset="digits", backbone="lenet5",
                                                                weights=str(BUNDLED_MNIST), n_train=n, **ctx.fixed),
                                         n_train=n, **sizes)) for s in ("fine-tune", "scratch"))
        if chosen and total + cost > budget_s:
            continue
        chosen.append(k)
        total += cost
    return chosen


def _forgetting(ctx: _Context) -> dict:
    """Fine-tune the MNIST model on all digits, plainly and with L2-SP and LwF, at settings strong
    enough to forget; the source task before and after each."""
    data = shots_of(ctx.digits, QUICK_SHOTS, seed=0) if ctx.quick else ctx.digits
    demo = forgetting_demo(data, weights=BUNDLED_MNIST, stop=ctx.stop, progress=_study_line(ctx), **PRECISION,
                           **({"epochs": 1} if ctx.quick else {}))
    if demo.stopped or demo.get("plain") is None:
        raise _Stopped()
    if demo.get("plain").after is None:
        raise TLCoreError(f"The plain fine-tune of step 4 did not finish: {demo.get('plain').run.message}")
    ctx.done["forgetting"] = demo
    plain, cfg = demo.get("plain"), demo.get("plain").run.config
    measured = [k for k in demo.runs if k.after is not None and k.run.test is not None]  # a diverged run is not
    suggested = ctx.done["duel"].transfer
    return {"settings": {"lr": cfg.lr, "body_lr_mult": cfg.body_lr_mult, "epochs": cfg.epochs, "preset": cfg.preset},
            "source_images": demo.source_images, "source_before": demo.before,
            "after": {k.keeper: k.after for k in measured},
            "target_test": {k.keeper: k.run.test.accuracy for k in measured},
            "lost_points": round(100 * (demo.before - plain.after), 1),
            "kept_points": {k.keeper: round(100 * (k.after - plain.after), 1) for k in measured if k is not plain},
            "names": {k.keeper: k.name for k in demo.runs},
            "suggested": {"body_lr_mult": suggested.config.body_lr_mult, "lr": suggested.config.lr,
                          "before": suggested.source_accuracy_before, "after": suggested.source_accuracy_after}}


def _why(ctx: _Context) -> dict:
    """The digits test images in three feature spaces: random weights, the MNIST body, step 4's fine-tune."""
    plain = ctx.done["forgetting"].get("plain").run
    digits, fit = ctx.digits, ctx.done["duel"].setup.fit
    space = feature_space(plain.model, str(BUNDLED_MNIST), digits.test.images, digits.test.labels)
    ctx.done["feature space"] = space
    return {"images": len(digits.test), "random_knn": fit.random_knn if fit else None,
            "source_knn": space.before.knn_accuracy, "after_knn": space.after.knn_accuracy,
            "after_lr": plain.config.lr, "after_source_task": plain.source_accuracy_after}


def _unlabelled(ctx: _Context) -> dict:
    """Digits with UNLABELLED_SHOTS labels per class, the rest without: the probe alone, and the probe
    on the rest too, labelled by label spreading over the MNIST body's features (3 seeds; --quick: 1)."""
    c = curve(ctx.digits, backbone="lenet5", weights=str(BUNDLED_MNIST), shots=UNLABELLED_SHOTS,
              seeds=1 if ctx.quick else 3, strategies=("linear-probe", SEMI), semi_method="label-spreading",
              stop=ctx.stop, progress=_study_line(ctx), **ctx.fixed)
    if c.stopped:
        raise _Stopped()
    ctx.done["unlabelled"] = c
    rows = {(r["shots"], r["strategy"]): r for r in c.results()}
    semi = [rows[(k, SEMI)] for k in UNLABELLED_SHOTS]
    return {"per_class": list(UNLABELLED_SHOTS), "method": c.semi_method, "seeds": semi[0]["seeds"],
            "training_images": len(ctx.digits.train),
            "probe": [rows[(k, "linear-probe")]["accuracy"] for k in UNLABELLED_SHOTS],
            "semi": [r["accuracy"] for r in semi], "unlabelled_used": [r["unlabelled_used"] for r in semi],
            "pseudo_label_accuracy": [r["pseudo_label_accuracy"] for r in semi],
            "sentence": verdict.semi_sentence(c.results(), c.semi_method)}


def _your_turn(ctx: _Context) -> dict:
    """Nothing to measure: what the steps found, for the sentence that hands over."""
    duel, data = ctx.done["duel"], ctx.done["how much data"]
    return {"per_class": SHOTS, "gap_points": round(100 * (duel.transfer.test.accuracy - duel.scratch.test.accuracy), 1),
            "catches_up_at": data["catches_up_at"], "largest_per_class": data["per_class"][-1],
            "source": Path(str(BUNDLED_MNIST)).name}


# Each step: what it measures, and how its numbers are told (in STEPS' order).
_PLAN = ((_source, words.source), (_small_task, words.small_task), (_how_much_data, words.how_much_data),
         (_forgetting, words.forgetting), (_why, words.why), (_unlabelled, words.unlabelled),
         (_your_turn, words.your_turn))
