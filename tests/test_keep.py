"""Issue #25: a class's work survives a refresh (the Keeper), and a session saves to one zip and
opens again (Save session / Open session), refusing a zip that is not one."""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import pytest

from conftest import BUNDLED, quick
from tlcore.api import read_bundle, reopened_run, saved_result, table_rows, train, write_bundle
from tlcore.errors import TLCoreError
from tlcore.events import StopToken
from tlcore.ui import keep, session as sessions
from tlcore.ui.session import Keeper, RunRecord, Session


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Request:
    def __init__(self, session_hash):
        self.session_hash = session_hash


@pytest.fixture(scope="module")
def run(tmp_path_factory, digits):
    """A finished run on digits, saved (once: the tests read it, never change it)."""
    out = tmp_path_factory.mktemp("runs") / "1-digits-lenet5"
    return RunRecord("1-digits-lenet5", train(quick(epochs=1), data=digits, out=out), digits, out)


def test_a_browsers_key_finds_its_session_and_another_key_never_does():
    kept = Keeper(hours=1, most=10, clock=Clock())
    mine, key = kept.resume(None, Session())
    assert isinstance(key, str) and len(key) >= 20
    assert kept.resume(key, Session()) == (mine, key)  # a reload: the same session
    other, other_key = kept.resume("someone else's guess", Session())
    assert other is not mine and other_key != key
    mine.cleanup(), other.cleanup()


def test_a_closed_session_is_kept_its_hours_then_ended_with_its_folder(run):
    clock = Clock()
    kept = Keeper(hours=2, most=10, clock=clock)
    s, key = kept.resume(None, Session())
    s.add_run(RunRecord(run.name, run.result, run.data, s.folder / "x"))
    folder = s.folder
    kept.park(s)
    clock.now = 2 * 3600 - 1
    assert kept.expire() == [] and kept.resume(key, Session())[0] is s  # reopened in time: all there
    kept.park(s)
    clock.now += 2 * 3600 + 1
    assert kept.expire() == [key]
    assert not folder.exists() and len(s.runs) == 0
    assert kept.resume(key, Session())[0] is not s  # an expired key names nothing: a new session


def test_past_the_most_kept_the_longest_closed_ends_first_and_open_ones_never():
    clock = Clock()
    kept = Keeper(hours=100, most=2, clock=clock)
    sessions_ = [kept.resume(None, Session()) for _ in range(4)]
    for i, (s, _) in enumerate(sessions_[:3]):
        clock.now = i
        kept.park(s)
    # Four kept, two allowed: the two closed longest end; the open one stays whatever the count.
    assert [kept.has(s) for s, _ in sessions_] == [False, False, True, True]
    assert kept.state_dict() == {"kept": 2, "closed": 1, "hours": 100, "most": 2}


def test_closing_a_kept_sessions_tab_stops_its_job_and_keeps_its_runs(run, monkeypatch):
    kept = Keeper(hours=1, most=10, clock=Clock())
    monkeypatch.setattr(sessions, "KEPT", kept)  # the server's keeper, fresh for this test
    s, key = kept.resume(None, Session())
    s.add_run(run)
    sessions.bind(s, Request("tab-1"))
    sessions.bind(s, Request("tab-2"))  # the same browser, two tabs
    job = s.jobs.open("training", StopToken())
    s.jobs.start(job)
    sessions.close_session(Request("tab-1"))
    assert not job.stop.requested, "closing one tab stopped the job another tab of the browser shows"
    sessions.close_session(Request("tab-2"))
    assert job.stop.requested and list(s.runs) == [run.name] and s.folder.exists()
    sessions.delete_session(s)  # Gradio's hour-later callback: the keeper's to end, not Gradio's
    assert list(s.runs) == [run.name]
    s.end_job(job)
    assert kept.resume(key, Session())[0] is s
    s.cleanup()


def test_a_session_not_kept_ends_when_its_tab_closes(run):
    s = Session()
    s.add_run(run)
    folder = s.folder
    sessions.bind(s, Request("api-client"))
    sessions.close_session(Request("api-client"))
    assert len(s.runs) == 0 and not folder.exists()


def test_save_then_open_brings_the_runs_and_the_views_back(run, tmp_path):
    s = Session()
    s.add_run(run)
    s.duel_view = {"summary": "Transfer is ahead.", "curves": {"from MNIST": run.result.history}}
    file, said = keep.save_session(s)
    assert said.startswith("Saved 1 run(s)")
    other = Session()
    said = keep.open_session(other, file["value"])
    assert said.startswith("Opened 1 run(s): 1-digits-lenet5"), said
    back = other.runs["1-digits-lenet5"]
    assert back.result.history == run.result.history
    # The saved settings are the run's, "auto" augmentation as it was resolved (on: digits are small).
    assert back.result.config == dataclasses.replace(run.result.config, augment=True)
    assert back.result.test is None and back.data.name == "digits"  # evaluated again when shown, on digits
    model = other.runs.model("1-digits-lenet5")
    assert model.num_classes == 10
    assert other.duel_view["summary"] == "Transfer is ahead."
    again = keep.open_session(other, file["value"])  # opened twice: the second gets a new name
    assert again.startswith("Opened 1 run(s)") and len(other.runs) == 2
    s.cleanup(), other.cleanup()


def test_a_run_whose_data_is_gone_is_judged_on_the_sample_kept_with_it(tmp_path):
    from tlcore.data import load_dataset

    from PIL import Image

    zipped = tmp_path / "shapes.zip"  # an upload: two class folders
    with zipfile.ZipFile(zipped, "w") as zf:
        for c in ("a", "b"):
            for i in range(12):
                buf = io.BytesIO()
                Image.new("L", (16, 16), 40 + 100 * (c == "b") + i).save(buf, "PNG")
                zf.writestr(f"{c}/{i}.png", buf.getvalue())
    data = load_dataset(str(zipped))
    out = tmp_path / "run"
    train(quick(dataset=str(zipped), epochs=1), data=data, out=out)
    zipped.unlink()  # the upload is gone
    result, judged_on, note = reopened_run(out)
    assert "kept with it" in note and judged_on.classes == ["a", "b"] and len(judged_on.test) > 0
    assert result.classes == ["a", "b"]


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_bytes(b"not a zip"), "not a valid zip"),
    (lambda p: zipfile.ZipFile(p, "w").writestr("x.txt", "hi"), "not a saved session"),
    (lambda p: zipfile.ZipFile(p, "w").writestr("session.json", "{}"), "is not a tlcore session"),
    (lambda p: zipfile.ZipFile(p, "w").writestr(
        "session.json", json.dumps({"format": "tlcore-session/1", "runs": [{"name": "a", "folder": "runs/a"}]})),
     "has no files"),
    (lambda p: zipfile.ZipFile(p, "w").writestr("../evil", "x"), "leaves its folder"),
])
def test_a_zip_that_is_not_a_session_is_refused_and_nothing_is_kept(tmp_path, make, says):
    bad = tmp_path / "bad.zip"
    make(bad)
    into = tmp_path / "into"
    with pytest.raises(TLCoreError, match=says):
        read_bundle(bad, into)
    assert not into.exists()
    s = Session()
    said = keep.open_session(s, str(bad))
    assert said.startswith("**Not opened:**") and len(s.runs) == 0
    s.cleanup()


def test_a_run_folder_that_does_not_read_back_refuses_the_whole_zip(run, tmp_path):
    good = write_bundle({"a": run.folder}, tmp_path / "s.zip")
    with zipfile.ZipFile(good) as zf, zipfile.ZipFile(tmp_path / "bad.zip", "w") as out:
        for m in zf.infolist():
            out.writestr(m, b"{" if m.filename.endswith("config.json") else zf.read(m))
    with pytest.raises(TLCoreError, match="config"):
        read_bundle(tmp_path / "bad.zip", tmp_path / "into")
    assert not (tmp_path / "into").exists()


def test_a_saved_result_reads_back_what_the_run_was(run):
    back = saved_result(run.folder)
    assert (back.status, back.best_epoch, back.history) == (run.result.status, run.result.best_epoch,
                                                            run.result.history)
    assert back.source_accuracy_after == run.result.source_accuracy_after and back.model is None


def test_the_runs_table_names_what_sets_each_run_apart(tmp_path, digits):
    plain = train(quick(epochs=1), data=digits, out=tmp_path / "a")
    kept = train(quick(epochs=1, weights=str(BUNDLED), preset="full", l2sp=0.03), data=digits, out=tmp_path / "b")
    rows = table_rows({"a": plain.checkpoint, "b": kept.checkpoint, "gone": tmp_path / "nothing"})
    assert [r["run"] for r in rows] == ["a", "b"]  # a folder that is gone is left out
    assert rows[0]["what"].startswith("digits · from scratch") and rows[0]["regularizer"] == "none"
    assert rows[1]["what"].startswith("digits · from MNIST · full · L2-SP 0.03")
    assert rows[1]["strategy"] == "full" and rows[1]["regularizer"] == "L2-SP 0.03"
    assert rows[0]["source acc after"] is None and rows[1]["source acc after"] == kept.source_accuracy_after > 0
