"""Per-browser-session state. Nothing mutable is global: each session holds its own.

A Session lives in a ``gr.State``; Gradio deletes it when the tab closes, and its
``delete_callback`` removes the session's own folder (its saved runs and downloads).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoints import load_run
from ..data import ImageData
from ..events import StopToken
from ..models import TransferNet
from ..paths import BUNDLED_MNIST
from ..result import RunResult
from ..teach import Drawings

# Every run of a session stays listed (its files are on disk until the session ends); only this
# many keep their weights in memory, the others reload from their folder when next used.
MAX_LOADED = 6
# What a new session starts with, as the README says: a transfer. The bundled MNIST LeNet-5 is the
# source, its body (these groups) frozen, a new head for the data: the tutorial's recipe.
DEFAULT_BACKBONE, DEFAULT_WEIGHTS, DEFAULT_PRESET = "lenet5", str(BUNDLED_MNIST), "linear-probe"
DEFAULT_FROZEN = ("conv1", "conv2", "fc1", "fc2")
SAVED = "saved: "  # how a run saved under the runs folder is offered (Draw, Compare): this, then its folder name  # LeNet-5's body (a test holds it to the preset)


@dataclass
class RunRecord:
    name: str
    result: RunResult
    data: ImageData  # the dataset it was trained and tested on (the gallery's images)
    folder: Path


@dataclass
class Session:
    dataset: ImageData | None = None
    dataset_label: str = ""
    # Settings chosen on the Model tab, applied when a model is built for training.
    backbone: str = DEFAULT_BACKBONE
    weights: str = DEFAULT_WEIGHTS
    frozen: list[str] = field(default_factory=lambda: list(DEFAULT_FROZEN))
    train_bn: bool = False
    # The model the Model tab describes (rebuilt when backbone, weights or classes change).
    preview: TransferNet | None = None
    preview_key: tuple | None = None
    suggested: dict | None = None  # the Train tab's settings as last suggested (tlcore.defaults)
    lr_found: float | None = None  # the Train tab's last learning-rate finder suggestion
    charts_for: tuple | None = None  # the data and model the Train tab's charts show a run of
    evaluated_on: dict[str, RunRecord] = field(default_factory=dict)  # a run shown on an uploaded set instead
    runs: dict[str, RunRecord] = field(default_factory=dict)
    runs_started: int = 0  # numbers run names: unique even after runs are deleted
    stop: StopToken | None = None  # the running training's, while one runs
    started: float = 0.0  # when it began (time.monotonic)
    drawings: Drawings = field(default_factory=Drawings)  # the Draw tab's labelled drawings
    canvas: int = 0  # counts the Draw tab's canvases: one more each time a drawing is added and cleared
    gallery: list[int] = field(default_factory=list)  # the test images the Evaluate gallery shows, in order
    gradcam: bool = False  # the Evaluate gallery shows Grad-CAM over its images
    feature_space: tuple | None = None  # (run name, FeatureSpace) last computed on the Evaluate tab
    _loaded: list[str] = field(default_factory=list)  # runs whose weights are in memory, least recently used first
    _folder: Path | None = None

    @property
    def folder(self) -> Path:
        """This session's private folder, made on first use."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tlcore-session-"))
        return self._folder

    def begin(self, stop: StopToken) -> StopToken:
        """A training of this session begins; Stop reaches it through ``stop``."""
        self.stop, self.started = stop, time.monotonic()
        return stop

    def end(self) -> None:
        self.stop = None

    def busy_for(self) -> float:
        """Seconds the running training has run (0 when none runs)."""
        return time.monotonic() - self.started if self.stop is not None else 0.0

    def new_run_name(self, label: str) -> str:
        """A name (and folder name) no run of this session has had."""
        self.runs_started += 1
        return f"{self.runs_started}-{label}"[:60]

    def add_run(self, record: RunRecord) -> None:
        self.runs[record.name] = record
        self._used(record.name)

    def model(self, name: str) -> TransferNet:
        """A run's model: in memory, or read back from its folder (then kept, within MAX_LOADED)."""
        result = self.runs[name].result
        if result.model is None:
            result.model, _ = load_run(result.checkpoint)
        self._used(name)
        return result.model

    def _used(self, name: str) -> None:
        """``name`` was just used: past MAX_LOADED, the least recently used saved run lets go of its weights."""
        self._loaded = [n for n in self._loaded if n != name and n in self.runs] + [name]
        for old in self._loaded[:-MAX_LOADED]:
            result = self.runs[old].result
            if result is not None and result.checkpoint:  # only a saved run can be read back
                result.model = None
        self._loaded = self._loaded[-MAX_LOADED:]

    def remove_run(self, name: str) -> None:
        """Forget a run of this session and delete its folder."""
        record = self.runs.pop(name)
        self.evaluated_on.pop(name, None)
        if self.feature_space and self.feature_space[0] == name:
            self.feature_space = None
        shutil.rmtree(record.folder, ignore_errors=True)

    def cleanup(self) -> None:
        if self.stop is not None:
            self.stop.stop()  # a run still going for a closed tab stops at its next step
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        self.runs.clear()
        self.evaluated_on.clear()
        self.feature_space = None
        self.drawings.clear()
        self.dataset = self.preview = None


def delete_session(session: Session) -> None:
    if isinstance(session, Session):
        session.cleanup()
