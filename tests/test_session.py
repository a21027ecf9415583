"""A browser session's own state: bounded runs, and everything removed when it ends."""
from __future__ import annotations

import numpy as np

from tlcore.events import StopToken
from tlcore.ui.session import MAX_RUNS, RunRecord, Session, delete_session


def test_runs_are_bounded_and_old_folders_removed():
    s = Session()
    folders = []
    for i in range(MAX_RUNS + 3):
        f = s.folder / f"run{i}"
        f.mkdir()
        (f / "model.safetensors").write_bytes(b"x")
        folders.append(f)
        s.add_run(RunRecord(f"run{i}", None, None, f))
    assert list(s.runs) == [f"run{i}" for i in range(3, MAX_RUNS + 3)]
    assert [f.exists() for f in folders] == [False] * 3 + [True] * MAX_RUNS
    root = s.folder
    delete_session(s)
    assert not root.exists()


def test_ending_a_session_stops_its_run_and_removes_everything():
    s = Session()
    s.stop = StopToken()
    s.drawings.images.append(np.zeros((28, 28), np.uint8))
    s.drawings.labels.append("1")
    (s.folder / "downloads").mkdir()
    (s.folder / "downloads" / "my-drawings.zip").write_bytes(b"PK")
    folder = s.folder
    delete_session(s)
    assert s.stop.requested and not folder.exists()
    assert s.runs == {} and len(s.drawings) == 0 and s.dataset is None
    delete_session("not a session")  # Gradio may hand over anything: never raises
