"""Per-browser-session state. Nothing mutable is global: each session holds its own.

A Session lives in a ``gr.State``; Gradio deletes it when the tab closes, and its
``delete_callback`` removes the session's own folder (its saved runs and downloads).

A session trains one thing at a time: a Start is admitted (it may then wait in the queue
behind other sessions' trainings), begins, and ends; a second Start meanwhile is refused.
A tab closed during a run stops the run, and its folder goes once the run has let go of it
(the run's last act is saving there: removed earlier, the folder would come back).
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from ..api import BUNDLED_MNIST, Drawings, ImageData, load_run, RunResult, TransferNet
from ..events import StopToken
from . import leftovers

# Every run of a session stays listed (its files are on disk until the session ends); only this
# many keep their weights in memory, the others reload from their folder when next used.
MAX_LOADED = 6
# What a new session starts with, as the README says: a transfer. The bundled MNIST LeNet-5 is the
# source, its body (these groups) frozen, a new head for the data: the tutorial's recipe.
DEFAULT_BACKBONE, DEFAULT_WEIGHTS, DEFAULT_PRESET = "lenet5", str(BUNDLED_MNIST), "linear-probe"
DEFAULT_FROZEN = ("conv1", "conv2", "fc1", "fc2")
# Stop files (ZeroGPU's stop request crosses into the worker process as a file) live here, not in
# the session's folder: a closing tab writes the stop and deletes its folder, and the worker must
# still see the file. Each run removes its own.
STOPS = Path(tempfile.gettempdir()) / leftovers.STOPS_NAME
SAVED = "saved: "  # how a run saved under the runs folder is offered (Draw, Compare): this, then its folder name  # LeNet-5's body (a test holds it to the preset)


class _Lock:
    """A lock a copy does not share: Gradio deep-copies the State's first Session for each visitor."""

    def __init__(self):
        self._lock = threading.Lock()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)

    def __deepcopy__(self, memo):
        return _Lock()


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
    started: float = 0.0  # when the training was admitted (time.monotonic)
    # Admitted trainings that have not reached their turn yet, and how many of those were stopped
    # while they waited (each ends as it reaches its turn). One flag would forget a second Start
    # admitted after a Stop once the first reached its turn, and admit a third.
    pending: int = 0
    withdrawn: int = 0
    drawings: Drawings = field(default_factory=Drawings)  # the Draw tab's labelled drawings
    canvas: int = 0  # counts the Draw tab's canvases: one more each time a drawing is added and cleared
    gallery: list[int] = field(default_factory=list)  # the test images the Evaluate gallery shows, in order
    gradcam: bool = False  # the Evaluate gallery shows Grad-CAM over its images
    feature_space: tuple | None = None  # (run name, FeatureSpace) last computed on the Evaluate tab
    _loaded: list[str] = field(default_factory=list)  # runs whose weights are in memory, least recently used first
    _folder: Path | None = None
    _closed: bool = False  # the tab closed: the folder goes when no run uses it
    _lock: _Lock = field(default_factory=_Lock, repr=False)

    @property
    def folder(self) -> Path:
        """This session's private folder, made on first use."""
        if self._folder is None:
            self._folder = leftovers.session_folder()
            # A session Gradio forgets without telling us (pushed out of its records) still takes
            # its folder along when it is freed.
            weakref.finalize(self, shutil.rmtree, self._folder, True)
        return self._folder

    @property
    def queued(self) -> bool:
        """A training was admitted, not withdrawn, and waits in the queue for its turn."""
        return self.pending > self.withdrawn

    def admit(self) -> bool:
        """A Start asks to train (when it is queued); False when a training is queued or running."""
        with self._lock:
            if self.queued or self.stop is not None or self._closed:
                return False
            self.pending, self.started = self.pending + 1, time.monotonic()
            return True

    def claim(self) -> bool:
        """A training reaches its turn: True when it may go on (it holds the session until ``end``),
        False when it was stopped while it waited, or another runs (it ends at once)."""
        with self._lock:
            self.pending = max(0, self.pending - 1)  # a direct call (tests, the tab's own handlers) was never admitted
            if self.withdrawn:
                self.withdrawn -= 1
                return False
            if self.stop is not None:
                return False
            # A token at once: a Stop pressed while the run sets up is kept for it (begin).
            self.stop, self.started = StopToken(), self.started or time.monotonic()
            return True

    def begin(self, stop: StopToken) -> StopToken:
        """A training of this session begins; Stop reaches it through ``stop``."""
        with self._lock:
            if self.stop is not None and self.stop.requested:
                stop.stop()
            self.stop, self.started = stop, self.started or time.monotonic()
        return stop

    def stop_token(self, *, as_file: bool) -> StopToken:
        """A new run's StopToken; ``as_file``: also a file, outside this session's folder."""
        if not as_file:
            return StopToken()
        STOPS.mkdir(exist_ok=True)
        return StopToken(STOPS / f"{leftovers.tag_prefix()}{uuid.uuid4().hex}")

    def end(self) -> None:
        """The training let go (called from its own thread, so it runs even if no tab watches)."""
        with self._lock:
            stop, self.stop, self.started = self.stop, None, 0.0
            closed = self._closed
        if stop is not None and stop.path is not None:
            stop.path.unlink(missing_ok=True)
        if closed:
            self._remove_folder()

    def withdraw(self) -> bool:
        """Stop pressed while a training only waits in the queue: it will not start."""
        with self._lock:
            if not self.queued or self.stop is not None:
                return False
            self.started, self.withdrawn = 0.0, self.withdrawn + 1
            return True

    def guarded(self, work):
        """``work(sink)`` that ends this session's training when it returns or raises, in its thread."""
        def run(sink):
            try:
                return work(sink)
            finally:
                self.end()
        return run

    def busy_for(self) -> float:
        """Seconds since the queued or running training was admitted (0 when none)."""
        return time.monotonic() - self.started if (self.stop is not None or self.queued) and self.started else 0.0

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
        """The tab closed: stop the run (if any), forget everything, remove the folder now or,
        while a run still writes there, as soon as it ends (``end``)."""
        with self._lock:
            self._closed, running = True, self.stop
        if running is not None:
            running.stop()  # a run still going for a closed tab stops at its next step
        else:
            self._remove_folder()
        self.runs.clear()
        self.evaluated_on.clear()
        self.feature_space = None
        self.drawings.clear()
        self.dataset = self.preview = None

    def _remove_folder(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


# Open sessions by Gradio's session_hash, for ending them when their tab closes (demo.unload):
# Gradio itself deletes a closed session's state only an hour later. Weak: never keeps one alive.
_OPEN: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()


def bind(session: Session, request) -> None:
    """Remember that ``session`` is the state of ``request``'s tab (a gr.Request; None: no tab)."""
    if isinstance(session, Session) and getattr(request, "session_hash", None):
        _OPEN[request.session_hash] = session


def close_session(request) -> None:
    """demo.unload: the tab closed (or the API client let go): end its session now."""
    session = _OPEN.pop(getattr(request, "session_hash", None) or "", None)
    if session is not None:
        session.cleanup()


def delete_session(session: Session) -> None:
    """gr.State's delete_callback (an hour after the tab closed; by then usually cleaned up)."""
    if isinstance(session, Session):
        session.cleanup()
