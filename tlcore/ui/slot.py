"""A session's job slot: one job at a time, whatever its kind (a training, a learning-rate sweep,
a comparison, a curve, a teaching). A job is opened (it may then wait for its turn), starts,
and ends; while it holds the slot a second is refused, and Stop reaches it whichever it is.

Only the slot's bookkeeping lives here; :mod:`tlcore.ui.jobs` runs jobs through it.
"""
from __future__ import annotations

import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..events import StopToken
from . import leftovers

# Stop files (ZeroGPU's stop request crosses into the worker process as a file) live here, not in
# the session's folder: a closing tab writes the stop and deletes its folder, and the worker must
# still see the file. Each job removes its own as it ends.
STOPS = Path(tempfile.gettempdir()) / leftovers.STOPS_NAME


def stop_token(*, as_file: bool) -> StopToken:
    """A new job's StopToken; ``as_file``: also a file, outside the session's folder."""
    if not as_file:
        return StopToken()
    STOPS.mkdir(exist_ok=True)
    return StopToken(STOPS / f"{leftovers.tag_prefix()}{uuid.uuid4().hex}")


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


@dataclass(eq=False)  # a job is itself: the line finds it by identity
class Job:
    """One job of a session: what it is, how Stop reaches it, since when it holds the slot."""

    kind: str  # a key of jobs.KINDS
    stop: StopToken
    since: float = field(default_factory=time.monotonic)
    running: bool = False  # its turn came (False: it waits in line)


class Busy(Exception):
    """The slot is taken by ``job`` (None: the session has ended and takes no more jobs)."""

    def __init__(self, job: Job | None):
        super().__init__(job.kind if job else "closed")
        self.job = job


class JobSlot:
    """A session's one place for a job. Thread-safe: jobs end in their own threads."""

    def __init__(self):
        self._job: Job | None = None
        self.closed = False  # the tab closed: no job opens any more
        self._lock = _Lock()

    @property
    def job(self) -> Job | None:
        """The job holding the slot, waiting or running (None: the slot is free)."""
        return self._job

    def open(self, kind: str, stop: StopToken) -> Job:
        """Take the slot for a job of ``kind``; raises Busy when it is taken or the session ended."""
        with self._lock:
            if self._job is not None or self.closed:
                raise Busy(self._job)
            self._job = Job(kind, stop)
            return self._job

    def start(self, job: Job) -> bool:
        """``job``'s turn came: True when it may run, False when it was stopped while it waited."""
        with self._lock:
            job.running = self._job is job and not job.stop.requested
            return job.running

    def end(self, job: Job) -> None:
        """``job`` let go of the slot (from its own thread, so it ends even if no tab watches)."""
        with self._lock:
            if self._job is job:
                self._job = None
            if job.stop.path is not None:  # under the lock: a late Stop (``stop``) cannot make it again
                job.stop.path.unlink(missing_ok=True)

    def stop(self, job: Job | None = None) -> Job | None:
        """Stop the job holding the slot (only if it is ``job``, when given); the job stopped, or None."""
        with self._lock:
            current = self._job
            if current is None or (job is not None and current is not job):
                return None
            current.stop.stop()
            return current

    def close(self) -> Job | None:
        """The session ended: no more jobs; the one holding the slot is stopped and returned."""
        with self._lock:
            self.closed = True
        return self.stop()

    def busy_for(self) -> float:
        """Seconds since the job holding the slot took it (0 when free)."""
        job = self._job
        return time.monotonic() - job.since if job is not None else 0.0

    def state_dict(self) -> dict:
        """What holds the slot, for tests and monitoring (a job is not restored: its thread is gone)."""
        job = self._job
        return {"kind": job.kind if job else None, "running": bool(job and job.running),
                "stopping": bool(job and job.stop.requested), "for_s": round(self.busy_for(), 3),
                "closed": self.closed}
