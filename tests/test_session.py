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


def test_run_names_stay_unique_after_old_runs_are_dropped():
    """Each new run gets a fresh name (and folder): none overwrites a run still listed."""
    s = Session()
    names = []
    for _ in range(MAX_RUNS + 3):
        names.append(s.new_run_name("digits-lenet5"))
        s.add_run(RunRecord(names[-1], None, None, s.folder / names[-1]))
    assert len(set(names)) == len(names) and names[0] == "1-digits-lenet5"
    assert list(s.runs) == names[3:]
    delete_session(s)


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


def test_draw_models_come_only_from_the_runs_folder(tmp_path, monkeypatch):
    """A saved run is picked by its folder name in $TLCORE_RUNS_DIR; anything else is refused."""
    import shutil

    import pytest

    from tlcore.errors import TLCoreError
    from tlcore.ui import draw_tab

    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "runs"))
    shutil.copytree(draw_tab.BUNDLED, tmp_path / "runs" / "mine")
    s = Session()
    assert "saved: mine" in draw_tab.model_choices(s)
    model, replay = draw_tab._source(s, "saved: mine")
    assert model.classes == [str(i) for i in range(10)] and len(replay().test) == 500
    for bad in ("saved: ../runs/mine", "saved: /etc", "saved: .", "saved: gone"):
        with pytest.raises(TLCoreError, match="no longer in"):
            draw_tab._source(s, bad)
