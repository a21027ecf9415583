"""A class's own frames (tlcore.studies.capture): classes renamed, added and removed with their
frames, limits, a head on the cached features scored on a held-out fifth, the frames as a dataset and
a zip that loads back."""
from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
from PIL import Image

from tlcore.data import load_dataset
from tlcore.errors import TLCoreError
from tlcore.studies import capture
from tlcore.studies.capture import SIDE, Captured


def _photo(kind: int, seed: int, size: int = 96) -> np.ndarray:
    """Two kinds of picture a camera might see: a red disc on grey, a blue bar on white (noisy)."""
    rng = np.random.default_rng(seed)
    a = np.full((size, size, 3), (128, 128, 128) if kind == 0 else (240, 240, 240), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    cx, cy = rng.integers(30, 66, 2)
    shape = ((xx - cx) ** 2 + (yy - cy) ** 2 < 400) if kind == 0 else (abs(xx - cx) < 8)
    a[shape] = (200, 30, 30) if kind == 0 else (30, 30, 200)
    return np.clip(a + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def frames() -> Captured:
    c = Captured()
    c.set_classes(["disc", "bar"])
    for kind, name in enumerate(c.classes):
        for seed in range(5):
            c.add(_photo(kind, seed), name)
    return c


@pytest.fixture
def captured(frames) -> Captured:
    """Ten frames through the body once a module; each test changes its own copy."""
    return copy.deepcopy(frames)


def test_frames_are_kept_small_with_their_features_and_the_head_scores_a_held_out_fifth(captured):
    assert captured.counts() == {"disc": 5, "bar": 5}
    assert captured.images[0].shape == (SIDE, SIDE, 3) and captured.features[0].shape == (1280,)
    fit = captured.train(seed=0)
    assert fit.held_out == 2 and fit.accuracy == 1.0 and fit.model.classes == ["disc", "bar"]
    probs = captured.predict(fit, _photo(1, 99))
    assert set(probs) == {"disc", "bar"} and probs["bar"] > 0.5 and abs(sum(probs.values()) - 1) < 1e-5
    png = io.BytesIO()
    Image.fromarray(_photo(0, 98)).save(png, format="PNG")
    assert max(captured.predict(fit, png.getvalue()).items(), key=lambda kv: kv[1])[0] == "disc"  # a file's bytes


def test_renaming_keeps_frames_removing_drops_them_and_adding_starts_empty(captured):
    captured.set_classes(["round", "bar", "empty"])  # "disc" renamed where it stood; "empty" added
    assert captured.counts() == {"round": 5, "bar": 5, "empty": 0}
    captured.set_classes(["round", "empty"])  # "bar" left out: its frames go with it, "empty" stays empty
    assert captured.counts() == {"round": 5, "empty": 0} and len(captured.features) == 5
    with pytest.raises(TLCoreError, match="at least 2 frames; empty has fewer"):
        captured.train()


@pytest.mark.parametrize("names,says", [(["a"], "at least 2 classes"), (["a", "a"], "its own name"),
                                        ([str(i) for i in range(11)], "At most 10 classes")])
def test_bad_class_names_are_refused_and_change_nothing(captured, names, says):
    with pytest.raises(TLCoreError, match=says):
        captured.set_classes(names)
    assert captured.classes == ["disc", "bar"]


def test_limits_unknown_classes_and_bad_frames_are_refused_by_name(captured, monkeypatch):
    with pytest.raises(TLCoreError, match="Unknown class 'cat'. The classes: disc, bar"):
        captured.add(_photo(0, 1), "cat")
    with pytest.raises(TLCoreError, match="not a usable image"):
        captured.add(b"not an image", "disc")
    with pytest.raises(TLCoreError, match="the camera sent no picture"):
        captured.add(np.zeros((0, 0, 3), np.uint8), "disc")
    monkeypatch.setattr(capture, "MAX_PER_CLASS", 5)
    with pytest.raises(TLCoreError, match="at most 5 a class"):
        captured.add(_photo(0, 7), "disc")
    assert len(captured) == 10
    captured.remove(0)
    assert captured.counts() == {"disc": 4, "bar": 5}


def test_the_frames_are_a_dataset_and_a_zip_that_loads_back(captured, tmp_path):
    data = captured.to_data()
    assert data.classes == ["disc", "bar"] and len(data.test) == 2 and len(data.train) + len(data.val) == 8
    assert data.train.images.shape[1:] == (3, SIDE, SIDE)
    path = tmp_path / "mine.zip"
    path.write_bytes(captured.to_zip())
    back = load_dataset(str(path))
    assert back.classes == ["bar", "disc"] and sum(len(s) for s in back.splits.values()) == 10
    assert torch.equal(torch.tensor(back.class_counts("train")) + torch.tensor(back.class_counts("val"))
                       + torch.tensor(back.class_counts("test")), torch.tensor([5, 5]))


def test_the_frames_become_the_sessions_dataset_and_the_data_tab_shows_them(captured):
    from tlcore.ui import capture_tab, data_tab
    from tlcore.ui.session import Session

    s = Session()
    s.captured = captured
    said = capture_tab.use_as_dataset(s)
    assert s.dataset.classes == ["disc", "bar"] and s.dataset_label == "my captures"
    assert said == f"The frames are now the dataset: {len(s.dataset.train)} to train, {len(s.dataset.test)} to test."
    shown = data_tab.shown(s)
    assert shown[0] is s and "### my captures" in shown[1] and "**2 classes**" in shown[1]
    s.captured = type(captured)()  # no frames: refused with a toast, the dataset kept
    with pytest.warns(UserWarning, match="at least 2 frames"):
        capture_tab.use_as_dataset(s)
    assert s.dataset.classes == ["disc", "bar"]
