"""What fine-tuning forgets, and how L2-SP and LwF keep it: a demonstration in three runs.

The source is a saved run with a replay sample (the bundled MNIST LeNet-5): its own test
images measure the source task before and after, read through the source's own head. At the
suggested settings (the body learning at a tenth of the head's rate, SGD at 0.01) a fine-tune
keeps nearly all of it (MNIST 99.6% -> 99.4%), so forgetting stays invisible; the preset uses
settings strong enough to show it: every layer at lr 0.1, the body at 1x, 5 epochs (SGD,
one-cycle, batch 32). Measured on all of digits, on the replay sample's 500 MNIST test images
(seed 0, 2 vCPUs; ``python -m tlcore lesson``, step 4, fp32): plain 99.6% -> 33.6%; L2-SP 0.03
keeps 81.8%, LwF 1 keeps 48.0%; digits 98.9%, 99.2%, 98.3%. With bf16 autocast (precision
"auto" on this CPU, which has AMX): 39.4%, 75.2%, 51.0% (``benchmarks/forgetting.py``: 37.4%,
83.0%, 60.0% on another such machine).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig
from ..data import ImageData
from ..errors import TLCoreError
from ..events import StopToken
from ..paths import BUNDLED_MNIST
from ..runs.names import run_name
from ..training.result import RunResult, Status
from ..training.source_task import SourceTask
from ..training.train import train
from .progress import Clock, Progress, planned

# Strong enough to show forgetting (see the module's docstring): every layer at 0.1, the body too.
STRONG = dict(preset="full", lr=0.1, body_lr_mult=1.0, epochs=5, batch_size=32, optimizer="sgd", scheduler="onecycle",
              early_stopping=0)
# Each way to fine-tune it: plain, and with a term that keeps the source.
KEEPERS = {"plain": {}, "L2-SP 0.03": {"l2sp": 0.03}, "LwF 1": {"lwf_weight": 1.0}}


@dataclass
class Kept:
    """One fine-tune of the demonstration and what it kept of the source task."""

    keeper: str  # "plain", "L2-SP 0.03", "LwF 1"
    name: str  # the run's name: "digits · from MNIST · full · L2-SP 0.03"
    run: RunResult

    @property
    def after(self) -> float | None:
        return self.run.source_accuracy_after

    def to_dict(self) -> dict:
        return {"keeper": self.keeper, "name": self.name, "source_after": self.after,
                "target_test": self.run.test.accuracy if self.run.test else None, "seconds": round(self.run.seconds, 2)}


@dataclass
class ForgettingDemo:
    """The source task's accuracy before, and after each fine-tune."""

    source: str
    before: float | None
    source_images: int
    runs: list[Kept] = field(default_factory=list)
    stopped: bool = False

    def get(self, keeper: str) -> Kept | None:
        return next((k for k in self.runs if k.keeper == keeper), None)

    def sentence(self) -> str:
        """What plain fine-tuning lost and what each keeper kept, with the numbers."""
        plain = self.get("plain")
        if plain is None or plain.after is None or self.before is None:
            return "Stopped before the plain fine-tune finished: nothing to compare yet."
        lost = self.before - plain.after
        said = [f"Fine-tuning every layer at lr {plain.run.config.lr:g} took the source task from {self.before:.1%} "
                f"to {plain.after:.1%} of its {self.source_images} test images ({100 * lost:.1f} points lost), "
                f"while reaching {plain.run.test.accuracy:.1%} on the new task."]
        for k in self.runs:
            if k is not plain and k.after is not None:
                saved = k.after - plain.after
                said.append(f"{k.keeper} kept {k.after:.1%} ({100 * saved:+.1f} points against plain; new task "
                            f"{k.run.test.accuracy:.1%}).")
        return " ".join(said)

    def to_dict(self) -> dict:
        return {"source": self.source, "source_before": self.before, "source_images": self.source_images,
                "runs": [k.to_dict() for k in self.runs], "stopped": self.stopped, "sentence": self.sentence()}


def forgetting_demo(data: ImageData, *, weights: str | Path = BUNDLED_MNIST, keepers: dict[str, dict] | None = None,
                    seed: int = 0, stop: StopToken | None = None, progress: Callable[[Progress], None] | None = None,
                    **settings) -> ForgettingDemo:
    """Fine-tune the source ``weights`` on ``data`` plainly and with each of ``keepers`` (a name and
    its RunConfig settings; default :data:`KEEPERS`), at :data:`STRONG` settings (``settings``
    override them), and measure the source task before and after each.

    Raises TLCoreError unless ``weights`` is a saved run with a replay sample.
    """
    keepers = KEEPERS if keepers is None else keepers
    source = SourceTask.of(str(weights))
    if source is None or source.replay is None or len(source.replay.test) == 0:
        raise TLCoreError(f"The forgetting demonstration needs a saved run with a replay sample as weights (such as "
                          f"{BUNDLED_MNIST.name}), got {str(weights)!r}.")
    if "plain" not in keepers:
        raise TLCoreError(f"keepers must include 'plain' (the fine-tune the others are judged against), got "
                          f"{sorted(keepers)}.")
    stop = stop or StopToken()
    cfgs = {k: RunConfig(dataset=data.name, backbone=source.model.backbone, weights=str(weights), seed=seed,
                         **{**STRONG, **settings, **extra}).validate() for k, extra in keepers.items()}
    sizes = dict(n_train=len(data.train), n_val=len(data.val), n_test=len(data.test))
    clock = Clock([planned(k, "fine-tune", c, **sizes) for k, c in cfgs.items()], progress)
    out = ForgettingDemo(Path(str(weights)).name, None, len(source.replay.test))
    for i, (keeper, cfg) in enumerate(cfgs.items()):
        if stop.requested:
            out.stopped = True
            break
        clock.begin(i)
        t = time.perf_counter()
        r = train(cfg, data=data, stop=stop)
        clock.end(i, time.perf_counter() - t)
        if r.status is Status.STOPPED:
            out.stopped = True
            break
        out.before = r.source_accuracy_before
        out.runs.append(Kept(keeper, run_name(cfg, others=cfgs.values()), r))
    clock.finish(out.sentence())
    return out
