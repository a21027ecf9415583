"""The Train tab's learning-rate finder and "Use this", the Model tab's unfreezing schedule and
the charts' unfreeze marks, through the tabs' functions."""
from __future__ import annotations

import time

import pytest

from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.events import EpochEvent, UnfreezeEvent
from tlcore.ui import model_tab, train_tab
from tlcore.ui.session import Session


@pytest.fixture
def session():
    s = Session(dataset=load_dataset("digits", samples_per_class=20), dataset_label="digits")
    model_tab.describe(s, "lenet5", "none", [], False)
    yield s
    s.cleanup()


def _values(**over):
    return [over.get(k, getattr(RunConfig, k)) for k in train_tab.FIELDS]


def test_use_this_fills_the_learning_rate_box_with_the_suggestion(session):
    with pytest.warns(UserWarning, match="Find a learning rate first"):
        train_tab.use_lr(session)  # nothing found yet: the box is left as it is
    fig, note, button = train_tab.find_lr(session, *_values(batch_size=32))
    assert fig.layout.xaxis.type == "log" and f"{session.lr_found:g}" in note and "rule: steep" in note
    assert button["interactive"] is True
    assert train_tab.use_lr(session) == session.lr_found
    assert 1e-7 <= session.lr_found <= 10 and session.stop is None  # the sweep ended its turn


def test_a_bad_setting_gives_no_suggestion_and_says_why(session):
    with pytest.warns(UserWarning):
        _, note, button = train_tab.find_lr(session, *_values(batch_size=-3))
    assert "No suggestion" in note and "batch" in note.lower() and button["interactive"] is False


def test_the_model_tab_lists_the_groups_live_in_each_epoch(session):
    table = model_tab.schedule(session, 7, 2, 0.1, 0.5, 0.5)
    assert list(table["epochs"]) == ["1-2", "3-4", "5-6", "7"]
    assert list(table["groups training"]) == ["head", "head, fc2", "head, fc2, fc1", "head, fc2, fc1, conv2"]
    rates = [float(r) for r in table["rates (head first)"].iloc[-1].split(", ")]
    assert rates == sorted(rates, reverse=True) and rates[1] == pytest.approx(0.05)


def test_the_charts_mark_each_unfreeze_point():
    view = train_tab.LiveView()
    view.update("unfreeze", UnfreezeEvent(3, ["fc2"], ["head", "fc2"], {"head": 0.1, "fc2": 0.05}))
    _, loss, acc = view.frame()
    for fig in (loss, acc):
        assert [s.x0 for s in fig.layout.shapes] == [2]
        assert "+fc2" in fig.layout.annotations[0].text


def test_epochs_that_end_faster_than_a_browser_redraws_are_drawn_together():
    """An epoch's end redraws the charts unless they were drawn less than jobs.EPOCH_EVERY_S ago
    (the run's last outputs draw every epoch)."""
    view = train_tab.LiveView()
    ends = [EpochEvent(e, 9, 1.0, 0.5, 1.0, 0.5, 0.1, 100.0, e * 0.01, 1.0, True) for e in range(1, 10)]
    drawn = [view.update("epoch_end", ev) for ev in ends[:3]]
    assert drawn == [True, False, False] and len(view.epoch_ends) == 3
    time.sleep(train_tab.jobs.EPOCH_EVERY_S)
    assert view.update("epoch_end", ends[3])
    _, _, acc = view.frame()
    assert len(acc.data[0].x) == 4  # the redraw has every epoch so far
