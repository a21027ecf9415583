"""What a run ends with: its status, message, history, test evaluation and where it was saved."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..config import RunConfig
from ..insight.evaluate import Evaluation
from ..errors import TLCoreError
from ..events import EpochEvent
from ..models import TransferNet
from ..runs.folder import read_metrics, read_run_config
from .balance import SKEWED
from .state import LoopState


class Status(str, Enum):
    """How a run ended. A str, so it compares, prints and serialises as its value."""

    COMPLETED = "completed"
    EARLY_STOPPED = "early-stopped"
    STOPPED = "stopped"  # on request
    FAILED = "failed"  # diverged, or out of memory
    PAUSED = "paused"  # out of its time budget at an epoch boundary; ``resume`` goes on

    def __str__(self) -> str:
        return self.value


# Runs that ended at an epoch boundary: they are tested, and their last state can continue them.
CONTINUABLE = (Status.COMPLETED, Status.EARLY_STOPPED)


@dataclass
class RunResult:
    model: TransferNet | None  # the best epoch's weights, on the CPU, in eval mode (None once let go of: see checkpoint)
    config: RunConfig
    classes: list[str]
    status: Status
    message: str
    history: list[EpochEvent] = field(default_factory=list)
    best_epoch: int = 0
    test: Evaluation | None = None
    images_per_second: float = 0.0
    seconds: float = 0.0
    device: str = ""
    checkpoint: Path | None = None
    resume: LoopState | None = None  # set when status is PAUSED (see train's budget_s)
    notes: list[str] = field(default_factory=list)  # about its settings (a regularizer that could not act)
    # The source task (a saved run's replay sample), read through the source's own head:
    source_accuracy_before: float | None = None  # by the source model
    source_accuracy_after: float | None = None  # by this run's body: what fine-tuning kept of it
    # Semi-supervised (tlcore.training.semi): method, pool, used, accuracy (of the pseudo-labels), labelled
    pseudo_labels: dict | None = None
    # Skewed classes (tlcore.training.balance): the remedy used and the training counts' max/min
    balance: dict | None = None

    @property
    def val_accuracy(self) -> float | None:
        best = [e for e in self.history if e.epoch == self.best_epoch]
        return best[0].val_accuracy if best else None

    def summary(self) -> dict:
        """The CLI's ``--json`` line."""
        return {
            "status": self.status.value,
            "message": self.message,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "test_accuracy": self.test.accuracy if self.test else None,
            "val_accuracy": self.val_accuracy,
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            "images_per_second": round(self.images_per_second, 1),
            "seconds": round(self.seconds, 2),
            "device": self.device,
            "source_accuracy_before": self.source_accuracy_before,
            "source_accuracy_after": self.source_accuracy_after,
            "notes": list(self.notes),
            **semi_fields(self.pseudo_labels),
            **balance_fields(self.balance, self.test),
        }

    def metrics(self, dataset: dict) -> dict:
        """``metrics.json``: the summary, the per-epoch history, the test metrics and the data."""
        return {
            "summary": {k: v for k, v in self.summary().items() if k != "checkpoint"},
            "history": [vars(e) for e in self.history],
            "test": self.test.to_dict() if self.test else None,
            "dataset": dataset,
        }


def semi_fields(pseudo: dict | None) -> dict:
    """A semi-supervised run's summary fields (named as the curve's rows name them); none for others."""
    if not pseudo:
        return {}
    return {"semi_supervised": pseudo["method"], "unlabelled_pool": pseudo["pool"],
            "unlabelled_used": pseudo["used"], "pseudo_label_accuracy": pseudo["accuracy"]}


def balance_fields(balance: dict | None, test) -> dict:
    """The remedy and the skew; the balanced accuracy (mean recall over classes); each class's
    recall when the training counts were skewed (tlcore.training.balance.SKEWED)."""
    out = {} if not balance else {"balance": balance["mode"], "class_skew": balance["skew"]}
    if test is not None:
        out["balanced_accuracy"] = test.balanced_accuracy
        if balance and balance["skew"] >= SKEWED:
            out["per_class_recall"] = test.recalls()
    return out


def saved_pseudo(summary: dict) -> dict | None:
    if "semi_supervised" not in summary:
        return None
    return {"method": summary["semi_supervised"], "pool": summary.get("unlabelled_pool"),
            "used": summary.get("unlabelled_used"), "accuracy": summary.get("pseudo_label_accuracy")}


def saved_result(folder: str | Path) -> RunResult:
    """A saved run as a RunResult, read from its folder: its settings, classes, history and summary;
    no weights in memory (``checkpoint`` names the folder) and no test evaluation (made again when
    needed: ``metrics.json`` keeps the test's figures, not its predictions)."""
    meta, metrics = read_run_config(folder), read_metrics(folder)
    s = metrics.get("summary") or {}
    fields = set(EpochEvent.__dataclass_fields__)
    try:
        history = [EpochEvent(**{k: v for k, v in e.items() if k in fields}) for e in metrics.get("history") or []]
        status = Status(s.get("status", Status.COMPLETED.value))
        config = RunConfig.from_saved(meta.get("run") or {})
    except (TypeError, ValueError) as e:
        raise TLCoreError(f"{folder}: its metrics or settings cannot be read back ({e}).") from None
    return RunResult(None, config, list(meta["classes"]), status, str(s.get("message", "")), history=history,
                     best_epoch=int(s.get("best_epoch") or 0), images_per_second=float(s.get("images_per_second") or 0),
                     seconds=float(s.get("seconds") or 0), device=str(s.get("device", "")), checkpoint=Path(folder),
                     notes=list(s.get("notes") or []), source_accuracy_before=s.get("source_accuracy_before"),
                     source_accuracy_after=s.get("source_accuracy_after"), pseudo_labels=saved_pseudo(s),
                     balance={"mode": s["balance"], "skew": s["class_skew"]} if "balance" in s else None)
