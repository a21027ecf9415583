"""Teach it: labelled drawings, their ImageFolder zip, replay samples, and fine-tuning on them."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from conftest import BUNDLED, digit_canvas
from tlcore.runs.checkpoints import REPLAY_FILE, list_runs, load_replay, load_run, replay_sample, save_replay
from tlcore.data import load_dataset
from tlcore.data.base import ImageData, Split
from tlcore.errors import TLCoreError
from tlcore.insight.predict import predict_probs
from tlcore.data.sketch import EmptySketch, sketch_batch
from tlcore.studies.teach import MAX_DRAWINGS, Drawings, teach, teaching_data

DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def bundled():
    model, _ = load_run(BUNDLED)
    return model, load_replay(BUNDLED, model.classes)


def blank(size=200):
    return np.full((size, size), 255, np.uint8)


def test_drawings_refuse_blank_unknown_labels_and_overflow():
    d = Drawings()
    with pytest.raises(EmptySketch):
        d.add(blank(), "7", DIGITS)
    with pytest.raises(TLCoreError, match="Unknown label 'seven'.*'0'"):
        d.add(digit_canvas("7"), "seven", DIGITS)
    assert len(d) == 0
    d.images = [np.zeros((28, 28), np.uint8)] * MAX_DRAWINGS
    d.labels = ["1"] * MAX_DRAWINGS
    with pytest.raises(TLCoreError, match=f"{MAX_DRAWINGS} drawings"):
        d.add(digit_canvas("7"), "7", DIGITS)


def test_drawings_zip_loads_back_as_an_image_folder(tmp_path):
    d = Drawings()
    for label, n in (("1", 3), ("7", 2)):
        for i in range(n):
            img = d.add(digit_canvas(label, box=(80 + 10 * i, 60, 300, 340)), label, DIGITS)
            assert img.shape == (28, 28) and img.dtype == np.uint8
    assert d.counts() == {"1": 3, "7": 2} and "5 drawings" in d.summary()
    raw = d.to_zip()
    names = zipfile.ZipFile(io.BytesIO(raw)).namelist()
    assert len(names) == 5 and all(n.startswith("my-drawings/") and n.endswith(".png") for n in names)
    path = tmp_path / "my-drawings.zip"
    path.write_bytes(raw)
    data = load_dataset(str(path), val_fraction=0.3)
    assert data.classes == ["1", "7"] and data.channels == 1 and data.size == 28
    assert sum(len(s) for s in data.splits.values()) == 5
    # The pixels survive the round trip exactly (PNG is lossless).
    got = sorted(x.numpy().tobytes() for s in data.splits.values() for x in s.images[:, 0])
    assert got == sorted(x.tobytes() for x in d.images)
    d.clear()
    with pytest.raises(TLCoreError, match="no drawings"):
        d.to_zip()


def test_replay_sample_is_stratified_bounded_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(0)

    def split(n, size):
        return Split(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
                     torch.arange(n) % 4)

    small = ImageData("toy", list("abcd"), split(400, 16), split(80, 16), split(200, 16))
    sample = replay_sample(small)
    assert sample.class_counts("train") == [60] * 4 and sample.class_counts("val") == [10] * 4
    assert sample.class_counts("test") == [50] * 4
    save_replay(tmp_path, small)
    back = load_replay(tmp_path, small.classes)
    assert torch.equal(back.train.images, sample.train.images) and torch.equal(back.test.labels, sample.test.labels)
    # Big photos: fewer per class, and the file stays under 4 MB.
    big = ImageData("big", list("abcd"), split(240, 160), split(40, 160), split(200, 160))
    assert replay_sample(big).class_counts("train")[0] < 60
    save_replay(tmp_path, big)
    assert (tmp_path / REPLAY_FILE).stat().st_size < 4 << 20
    # A damaged replay file costs the replay only.
    (tmp_path / REPLAY_FILE).write_bytes(b"\x80\x04 not safetensors")
    assert load_replay(tmp_path, small.classes) is None


def test_teaching_data_mixes_drawings_into_another_datasets_shape(bundled):
    d = Drawings()
    d.add(digit_canvas("7"), "7", DIGITS)
    g = torch.Generator().manual_seed(0)
    replay = ImageData("rgb", DIGITS, *(Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                                              torch.arange(n) % 10) for n in (100, 20, 50)))
    data = teaching_data(d, DIGITS, replay)
    assert data.train.images.shape[1:] == (3, 32, 32)
    n_drawn = len(data.train) - 100
    assert n_drawn == 50  # one drawing repeated to half the replay's size (capped at 50 repeats)
    assert (data.train.labels[100:] == 7).all() and len(data.val) == 21
    with pytest.raises(TLCoreError, match="Add some drawings"):
        teaching_data(Drawings(), DIGITS, replay)


def flagged_ones(n, seed=0):
    """A '1' with a crossbar: this model reads it as something else; we teach it it is a 4."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = Image.new("L", (420, 420), 255)
        dr = ImageDraw.Draw(img)
        x = int(rng.integers(150, 250))
        dr.line([(x - 60, 120), (x, 80), (x, 340)], fill=0, width=18)
        dr.line([(x - 40, 220), (x + 40, 220)], fill=0, width=18)
        out.append(np.asarray(img))
    return out


def test_teach_learns_the_drawings_without_forgetting(bundled, tmp_path):
    model, replay = bundled
    assert replay is not None and len(replay.test) == 500, "the bundled run ships its replay sample"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    d = Drawings()
    for img in flagged_ones(8):
        d.add(img, "4", model.classes)
    held_out = sketch_batch(flagged_ones(4, seed=1), model.spec)
    assert (predict_probs(model, held_out).argmax(1) != 4).all()
    out = tmp_path / "taught"
    r = teach(model, d, replay, out=out)
    assert r.drawings_before == 0.0 and r.drawings_after == 1.0
    # Drawings it never saw, in the same handwriting, are now read the taught way...
    assert (predict_probs(r.model, held_out).argmax(1) == 4).float().mean() >= 0.75
    # ...and the original task is kept (the replay's 500 MNIST test images).
    assert r.original_after >= r.original_before - 0.01 and r.original_after >= 0.97
    assert "100% of your drawings right (was 0%)" in r.message()
    # The original model is untouched; the taught one is a saved run with its own replay sample.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    again, meta = load_run(out)
    assert torch.equal(predict_probs(again, held_out), predict_probs(r.model, held_out))
    assert load_replay(out, again.classes) is not None and list_runs(tmp_path) == [out]


def test_teach_without_replay_and_with_a_mismatched_model(bundled):
    model, _ = bundled
    d = Drawings()
    for img in flagged_ones(3):
        d.add(img, "4", model.classes)
    r = teach(model, d, None, epochs=2)
    assert r.original_after is None and r.message().startswith("Taught: now")
    other = Drawings()
    other.images, other.labels = list(d.images), ["cat"] * 3
    with pytest.raises(TLCoreError, match="cat"):
        teach(model, other, None)


def test_list_runs_ignores_what_is_not_a_run(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.json").write_text("{}")
    (tmp_path / "file.txt").write_text("x")
    assert list_runs(tmp_path) == [] and list_runs(tmp_path / "absent") == []
