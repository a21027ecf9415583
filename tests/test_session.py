"""A browser session's own state: bounded runs, and everything removed when it ends."""
from __future__ import annotations

import numpy as np
import torch

import pytest

from tlcore.events import StopToken
from tlcore.config import RunConfig
from tlcore.training.train import train
from tlcore.ui.session import MAX_LOADED, RunRecord, Session, delete_session
from tlcore.ui.slot import Busy


def test_every_run_stays_listed_and_only_the_weights_are_capped():
    """Past MAX_LOADED runs nothing vanishes: the oldest let go of their weights, which come back
    from their folder, the same, when a tab asks for them."""
    s = Session()
    for i in range(MAX_LOADED + 3):
        name = s.runs.new_name("digits-lenet5")
        r = train(RunConfig(dataset="digits", epochs=1, seed=i), out=s.folder / name)
        s.add_run(RunRecord(name, r, None, s.folder / name))
    assert list(s.runs) == [f"{i + 1}-digits-lenet5" for i in range(MAX_LOADED + 3)]
    assert [s.runs[n].result.model is None for n in s.runs] == [True] * 3 + [False] * MAX_LOADED
    first = s.runs["1-digits-lenet5"]
    assert first.folder.exists() and first.result.test is not None  # its evaluation stays
    x = torch.rand(4, 1, 28, 28)
    back = s.runs.model("1-digits-lenet5")
    assert torch.equal(back(x), train(RunConfig(dataset="digits", epochs=1, seed=0)).model(x))
    assert s.runs["2-digits-lenet5"].result.model is None  # now the least recently used
    assert sum(r.result.model is not None for r in s.runs.values()) == MAX_LOADED
    root = s.folder
    delete_session(s)
    assert not root.exists()


def test_run_names_stay_unique_after_a_run_is_deleted():
    """Each new run gets a fresh name (and folder): none overwrites a run still listed."""
    s = Session()
    names = []
    for _ in range(4):
        names.append(s.runs.new_name("digits-lenet5"))
        s.add_run(RunRecord(names[-1], None, None, s.folder / names[-1]))
    s.remove_run(names[1])
    names.append(s.runs.new_name("digits-lenet5"))
    assert len(set(names)) == len(names) and names[0] == "1-digits-lenet5" and names[-1] == "5-digits-lenet5"
    delete_session(s)


def test_ending_a_session_stops_its_run_and_removes_everything():
    """The folder goes once the stopped run lets go of it: a run's last act is saving there."""
    s = Session()
    job = s.jobs.open("training", StopToken())
    assert s.jobs.start(job)
    stop = s.stop
    s.drawings.images.append(np.zeros((28, 28), np.uint8))
    s.drawings.labels.append("1")
    (s.folder / "downloads").mkdir()
    (s.folder / "downloads" / "my-drawings.zip").write_bytes(b"PK")
    folder = s.folder
    delete_session(s)
    assert stop.requested and s.runs == {} and len(s.drawings) == 0 and s.dataset is None
    (folder / "1-run").mkdir()  # the stopping run saves its best epoch
    s.end_job(job)
    assert not folder.exists() and s.jobs.busy_for() == 0 and s.stop is None
    with pytest.raises(Busy):  # a closed session runs no more jobs
        s.jobs.open("teaching", StopToken())
    idle = Session()
    idle_folder = idle.folder
    delete_session(idle)
    assert not idle_folder.exists()  # nothing running: removed at once
    delete_session("not a session")  # Gradio may hand over anything: never raises


def test_draw_models_come_only_from_the_runs_folder(tmp_path, monkeypatch):
    """A saved run is picked by its folder name in $TLCORE_RUNS_DIR; anything else is refused."""
    import shutil

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


def test_a_session_forgotten_without_a_word_takes_its_folder_along():
    """Gradio pushes the least recently used sessions out of its records without calling their
    delete_callback: the folder goes when the Session is freed."""
    import gc

    s = Session()
    (s.folder / "downloads").mkdir()
    folder = s.folder
    del s
    gc.collect()
    assert not folder.exists()
