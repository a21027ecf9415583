"""Per-browser-session state. Nothing mutable is global: each session holds its own.

A Session is what one tab sees and was told (its data, its model choices, each tab's view), and
three parts with lives of their own: its runs (:class:`RunStore`), its job slot (:class:`JobSlot`:
one training, sweep, comparison, curve or teaching at a time) and its folder (:class:`Home`).

A Session lives in a ``gr.State``; Gradio deep-copies the first one for each visitor and deletes
it when the tab closes, and its ``delete_callback`` ends the session. A tab closed during a job
stops the job, and its folder goes once the job has let go of it (a run's last act is saving
there: removed earlier, the folder would come back).
"""
from __future__ import annotations

import os
import secrets
import shutil
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from ..api import BUNDLED_MNIST, Captured, Drawings, Fitted, ImageData, LessonRun, TransferNet
from ..events import StopToken
from . import leftovers
from .runstore import MAX_LOADED, RunRecord, RunStore  # noqa: F401 (MAX_LOADED: the store's, named here too)
from .slot import Job, JobSlot, stop_token

# What a new session starts with, as the README says: a transfer. The bundled MNIST LeNet-5 is the
# source, its body (these groups) frozen, a new head for the data: the tutorial's recipe; the data
# is the offline digits, loaded at once, so the app is useful before anything is chosen.
DEFAULT_DATASET = "digits"
DEFAULT_BACKBONE, DEFAULT_WEIGHTS, DEFAULT_PRESET = "lenet5", str(BUNDLED_MNIST), "linear-probe"
DEFAULT_FROZEN = ("conv1", "conv2", "fc1", "fc2")  # LeNet-5's body (a test holds it to the preset)
SAVED = "saved: "  # how a run saved under the runs folder is offered (Draw, Compare): this, then its folder name


class Home:
    """A session's private folder (its runs, uploads, downloads): made on first use, removed when
    the session ends, or when the Home is freed if Gradio forgets the session without a word."""

    def __init__(self):
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = leftovers.session_folder()
            weakref.finalize(self, shutil.rmtree, self._path, True)
        return self._path

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)

    def state_dict(self) -> dict:
        return {"path": str(self._path) if self._path else None,
                "exists": bool(self._path and self._path.exists())}


@dataclass
class Session:
    # The data and model chosen on the Data and Model tabs (a model is built from them to train).
    dataset: ImageData | None = None
    dataset_label: str = ""
    backbone: str = DEFAULT_BACKBONE
    weights: str = DEFAULT_WEIGHTS
    frozen: list[str] = field(default_factory=lambda: list(DEFAULT_FROZEN))
    train_bn: bool = False
    # The weights a suggested model comes with (the Data tab's "Use ..."): taken by the Model tab's
    # next backbone change, which otherwise keeps the weights chosen before when the new backbone has them.
    next_weights: str | None = None
    # Each tab's view of them.
    preview: TransferNet | None = None  # the model the Model tab describes (rebuilt when the choices change)
    preview_key: tuple | None = None
    suggested: dict | None = None  # the Train tab's settings as last suggested (tlcore.training.suggest)
    lr_found: float | None = None  # the Train tab's last learning-rate finder suggestion
    charts_for: tuple | None = None  # the data and model the Train tab's charts show a run of
    evaluated_on: dict[str, RunRecord] = field(default_factory=dict)  # a run shown on an uploaded set instead
    gallery: list[int] = field(default_factory=list)  # the test images the Evaluate gallery shows, in order
    gradcam: bool = False  # the Evaluate gallery shows Grad-CAM over its images
    feature_space: tuple | None = None  # (run name, FeatureSpace) last computed on the Evaluate tab
    drawings: Drawings = field(default_factory=Drawings)  # the Draw tab's labelled drawings
    canvas: int = 0  # counts the Draw tab's canvases: one more each time a drawing is added and cleared
    added: bytes = b""  # the last added drawing's 28x28: a guess at it, sent before the canvas cleared, is stale
    captured: Captured = field(default_factory=Captured)  # the Capture tab's classes and frames
    capture_fit: Fitted | None = None  # the head last trained on them (the live prediction's)
    lesson: LessonRun | None = None  # the Lesson tab's steps so far
    duel_view: dict | None = None  # Compare's last transfer vs scratch: {"curves": label -> history, "summary"}
    curve_view: dict | None = None  # Compare's last curve: {"points", "n_classes", "status"}
    # Its parts.
    runs: RunStore = field(default_factory=RunStore)
    jobs: JobSlot = field(default_factory=JobSlot, repr=False)
    home: Home = field(default_factory=Home, repr=False)

    stop_token = staticmethod(stop_token)  # a new job's StopToken (slot.stop_token)

    @property
    def folder(self) -> Path:
        """This session's private folder, made on first use."""
        return self.home.path

    @property
    def stop(self) -> StopToken | None:
        """How Stop reaches this session's job (None: no job holds the slot)."""
        job = self.jobs.job
        return job.stop if job is not None else None

    def add_run(self, record: RunRecord) -> None:
        self.runs.add(record)

    def remove_run(self, name: str) -> None:
        """Forget a run of this session, what the Evaluate tab showed of it, and its folder."""
        self.runs.remove(name)
        self.evaluated_on.pop(name, None)
        if self.feature_space and self.feature_space[0] == name:
            self.feature_space = None

    def end_job(self, job: Job) -> None:
        """``job`` let go of the session; if the tab closed meanwhile, the folder goes now."""
        self.jobs.end(job)
        if self.jobs.closed:
            self.home.remove()

    def cleanup(self) -> None:
        """The tab closed: stop the job (if any), forget everything, remove the folder now or,
        while a job still writes there, as soon as it ends (``end_job``)."""
        if self.jobs.close() is None:  # a job still going for a closed tab stops at its next step
            self.home.remove()
        self.runs.clear()
        self.evaluated_on.clear()
        self.feature_space = None
        self.drawings.clear()
        self.dataset = self.preview = self.lesson = self.duel_view = self.curve_view = None

    def state_dict(self) -> dict:
        """The choices the tabs were told and each part's state (for tests and monitoring)."""
        return {"dataset": self.dataset_label or (self.dataset.name if self.dataset else None),
                "model": {"backbone": self.backbone, "weights": self.weights, "frozen": list(self.frozen),
                          "train_bn": self.train_bn},
                "drawings": len(self.drawings), "runs": self.runs.state_dict(), "jobs": self.jobs.state_dict(),
                "home": self.home.state_dict()}


# Open sessions by Gradio's session_hash, for ending them when their tab closes (demo.unload):
# Gradio itself deletes a closed session's state only an hour later. Weak: never keeps one alive.
_OPEN: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()


def bind(session: Session, request) -> None:
    """Remember that ``session`` is the state of ``request``'s tab (a gr.Request; None: no tab)."""
    if isinstance(session, Session) and getattr(request, "session_hash", None):
        _OPEN[request.session_hash] = session


def close_session(request) -> None:
    """demo.unload: the tab closed (or the API client let go). A kept session (a browser's, see
    :class:`Keeper`) stops its job, unless another tab of that browser has it open, and waits to
    be reopened; any other ends now."""
    session = _OPEN.pop(getattr(request, "session_hash", None) or "", None)
    if session is None:
        return
    if KEPT.has(session):
        if not any(other is session for other in _OPEN.values()):
            session.jobs.stop()
            KEPT.park(session)
        return
    session.cleanup()


def delete_session(session: Session) -> None:
    """gr.State's delete_callback (an hour after the tab closed; by then usually cleaned up).
    A kept session is the Keeper's to end, when it expires."""
    if isinstance(session, Session) and not KEPT.has(session):
        session.cleanup()


class Keeper:
    """Sessions kept for their browser: a key the browser holds (gr.BrowserState, in its local
    storage) names a session here, so a reload or a reopened tab finds its runs, comparisons,
    curves and lesson again. Other browsers hold other keys and never see it.

    Limits: a session whose tabs are all closed is kept ``hours`` (then ended: its job stopped,
    its folder removed), at most ``most`` of them (past that the longest-closed ends first), and
    none across a restart of the server (the browser's key then names nothing: a new session).
    """

    def __init__(self, hours: float = 6.0, most: int = 100, clock=time.monotonic):
        self.hours, self.most, self.clock = hours, most, clock
        self._kept: dict[str, Session] = {}
        self._closed_at: dict[str, float] = {}  # key -> when its last tab closed (absent: open)

    def has(self, session: Session) -> bool:
        return any(s is session for s in self._kept.values())

    def resume(self, key: str | None, fresh: Session) -> tuple[Session, str]:
        """The session ``key`` names (or ``fresh``, kept under a new key when it names none)."""
        self.expire()
        if isinstance(key, str) and key in self._kept:
            self._closed_at.pop(key, None)
            return self._kept[key], key
        key = secrets.token_urlsafe(18)
        self._kept[key] = fresh
        return fresh, key

    def park(self, session: Session) -> None:
        """Its last tab closed: the clock of its keeping starts."""
        for key, s in self._kept.items():
            if s is session:
                self._closed_at[key] = self.clock()
        self.expire()

    def expire(self) -> list[str]:
        """End the sessions closed longer than ``hours``, and the longest-closed past ``most``."""
        now, closed = self.clock(), sorted(self._closed_at, key=self._closed_at.get)
        old = [k for k in closed if now - self._closed_at[k] > self.hours * 3600]
        excess = [k for k in closed if k not in old][:max(0, len(self._kept) - len(old) - self.most)]
        for key in old + excess:
            self._closed_at.pop(key)
            self._kept.pop(key).cleanup()
        return old + excess

    def state_dict(self) -> dict:
        return {"kept": len(self._kept), "closed": len(self._closed_at), "hours": self.hours, "most": self.most}


# The server's keeper (hours and count from the environment: a Space may want them smaller).
KEPT = Keeper(float(os.environ.get("TLCORE_KEEP_HOURS", "6")), int(os.environ.get("TLCORE_KEEP_SESSIONS", "100")))
