"""ZeroGPU's path: a run split into spaces.GPU calls (the real decorator when `spaces` is
installed; off ZeroGPU it returns the function unchanged), events streamed back, Stop via a file."""
from __future__ import annotations

import pytest
import torch

from conftest import quick
from tlcore.data import ImageData, Split
from tlcore.errors import TLCoreError
from tlcore.events import StopToken
from tlcore.training.train import train
from tlcore.ui import train_tab, zerogpu
from tlcore.ui.session import Session


def cfg(**kw):
    """conftest's quick run, four epochs: four calls of one epoch each."""
    return quick(**{"epochs": 4, **kw})


def test_calls_stream_events_and_end_as_one_run(digits, tmp_path):
    whole = train(cfg(), data=digits)
    got = []
    r = zerogpu.train_in_calls(cfg(), digits, sink=got.append, stop=StopToken(tmp_path / "stop"),
                               out=tmp_path / "run", budget_s=0)  # one epoch per call: four calls
    assert r.status == "completed" and r.checkpoint == tmp_path / "run"
    assert [e.epoch for k, e in got if k == "epoch_end"] == [1, 2, 3, 4]
    assert [k for k, _ in got].count("run_start") == 1 and got[-1][0] == "run_end"
    a, b = whole.model.state_dict(), r.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and r.test.accuracy == whole.test.accuracy


def test_stop_reaches_the_call_through_its_file(digits, tmp_path):
    """The worker builds its own token from the path, as a forked process would: only the file
    carries the request. Stopping after epoch 2 ends the run there, keeping the best epoch."""
    stop = StopToken(tmp_path / "stop")

    def sink(event):
        if event[0] == "epoch_end" and event[1].epoch == 2:
            stop.stop()

    r = zerogpu.train_in_calls(cfg(epochs=10), digits, sink=sink, stop=stop, budget_s=0)
    assert r.status == "stopped" and len(r.history) == 2 and r.best_epoch in (1, 2)


def test_mistakes_surface_as_one_line(digits, tmp_path):
    with pytest.raises(TLCoreError, match="Unknown backbone"):
        zerogpu.train_in_calls(cfg(backbone="resnet9000"), digits, sink=lambda e: None,
                               stop=StopToken(tmp_path / "stop"))


def test_an_unexpected_error_in_a_call_reaches_the_user_as_the_train_tabs_message(digits, tmp_path):
    """Our bug, not the user's (here: labels out of range make cross-entropy raise IndexError in
    the worker): the call's stream turns it into the sentence the Train tab shows for the same
    fault in this process, never a KeyError from a result that is not there."""
    broken = ImageData("digits, labels out of range", digits.classes,
                       Split(digits.train.images, digits.train.labels + 10), digits.val, digits.test)
    with pytest.raises(TLCoreError) as e:
        zerogpu.train_in_calls(cfg(), broken, sink=lambda ev: None, stop=StopToken(tmp_path / "stop"))
    said = "Training failed unexpectedly (IndexError). The app is still running."
    assert str(e.value) == said
    session = Session(dataset=broken, dataset_label="digits")
    frames = list(train_tab.start(session, 2, 64, 0.1, "sgd", "onecycle", 1.0, 0.1, "off", 0, 0))
    assert frames[-1][3] == f"**Not finished:** {said}" and session.stop is None


def test_the_decorator_is_spaces_own_when_installed():
    spaces = pytest.importorskip("spaces", reason="the spaces package is not installed")
    assert zerogpu.spaces is spaces and not zerogpu.ENABLED  # off ZeroGPU: runs in this process
