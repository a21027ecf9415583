"""Fuzzing (#17): thousands of mutated zips, images, run folders, config values and app payloads.

Each input must end in a clean refusal (TLCoreError or ImageRejected in the engine; gr.Error or
a warning in the app) or a valid result: never another exception, never more than DEADLINE on
one input (Hypothesis' deadline), never a write outside the session's folder (the app test
runs with cwd, TMPDIR, the runs and cache folders inside one temporary folder, and compares
it before and after). Derandomized: the same inputs every run. The counts per kind are
printed at the end of the module.

Each test names its count under the "ci" Hypothesis profile (5,700 inputs in all), which .ci/run
uses; the default "dev" profile runs a twentieth of each (285). See tests/conftest.py.
"""
from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from conftest import ROOT, class_image, fuzz_examples
from tlcore.runs.card import model_card
from tlcore.runs.checkpoints import list_runs, load_replay, load_run
from tlcore.studies.curve import parse_shots
from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.data.folder import load_image_folder
from tlcore.data.images import ImageRejected, decode_image
from tlcore.errors import TLCoreError
from tlcore.preprocess import InputSpec
from tlcore.training.resume import continuable
from tlcore.runs.folder import read_metrics, run_row
from tlcore.data.sketch import sketch_batch, to_mnist
from tlcore.training.train import train

DEADLINE = timedelta(seconds=5)
# Fuzzed zips have duplicate names, fuzzed images odd chunks: their libraries warn, as they should.
pytestmark = pytest.mark.filterwarnings("ignore")
COUNTS: Counter = Counter()


def fuzz(n: int):
    """``n`` inputs under the ci profile (the loaded profile's share of them otherwise)."""
    return settings(max_examples=fuzz_examples(n), deadline=DEADLINE, derandomize=True, database=None,
                    print_blob=True, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    line = "fuzzed inputs: " + ", ".join(f"{k} {v:,}" for k, v in sorted(COUNTS.items())) + \
        f"; {sum(COUNTS.values()):,} in all"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("\n" + line)


# -- mutations --------------------------------------------------------------------------------------
EDGES = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x80\x00", b"\x00\x01\x00\x00"]


@st.composite
def mutated(draw, seeds: list[bytes], header: int = 64) -> bytes:
    """A seed with 1-4 edits: a bit flipped, cut short, bytes inserted, deleted, repeated, or an
    edge value written (often into the header, where sizes and offsets live)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "edge", "header", "repeat"]))
        n = len(data)
        i = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 64))]
        elif op in ("edge", "header"):
            j = min(i, header) if op == "header" else i
            data[j:j + 4] = draw(st.sampled_from(EDGES))
        elif op == "repeat":
            data[i:i] = data[i:i + draw(st.integers(1, 256))]
    return bytes(data)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=12),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=6)


@st.composite
def json_mutated(draw, obj):
    """``obj`` (JSON data) with one value somewhere in it replaced by any JSON, or its key deleted."""
    obj = json.loads(json.dumps(obj))
    node = obj
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            return draw(JSON)
        k = draw(st.sampled_from(keys))
        if isinstance(node[k], (dict, list)) and node[k] and draw(st.booleans()):
            node = node[k]
            continue
        if isinstance(node, dict) and draw(st.integers(0, 3)) == 0:
            del node[k]
        else:
            node[k] = draw(JSON)
        return obj


def _encode(arr: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    im = im.convert(mode) if mode else im
    im.save(buf, fmt)
    return buf.getvalue()


_rgb, _gray = class_image(3, 16), class_image(5, 16, rgb=False)
IMAGES = [_encode(_rgb, "PNG"), _encode(_gray, "PNG"), _encode(_rgb, "PNG", "RGBA"), _encode(_rgb, "PNG", "P"),
          _encode(_gray, "PNG", "1"), _encode((_gray.astype(np.uint16) * 257), "PNG"), _encode(_rgb, "JPEG"),
          _encode(_gray, "JPEG"), _encode(_rgb, "GIF"), _encode(_rgb, "BMP"), _encode(_rgb, "TIFF"),
          _encode(_rgb, "WEBP"), _encode(_rgb, "PPM")]
NAME_PARTS = ["train", "test", "val", "cat", "dog", "a", "..", ".", "", " ", "__MACOSX", ".hidden", "x.png", "y.jpg",
              "z.txt", "n.zip", "C:", "a\\..\\b", "é", "a" * 200, "/", "x.PNG"]


def _zip(members: list[tuple[str, bytes, int]], deflate: bool) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for name, data, attr in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = attr
            z.writestr(info, data)
    return buf.getvalue()


SEED_ZIPS = [_zip([(f"{c}/{i}.png", IMAGES[(i + k) % 4], 0o644 << 16) for k, c in enumerate(classes) for i in range(3)],
                  deflate)
             for classes, deflate in ((("cat", "dog"), True), (("train/a", "train/b", "test/a", "test/b"), False),
                                      (("top/cat", "top/dog", "top/eel"), True))]
members = st.lists(st.tuples(st.lists(st.sampled_from(NAME_PARTS) | st.text(max_size=6), min_size=1, max_size=4)
                             .map("/".join).filter(bool),
                             st.sampled_from(IMAGES) | mutated(IMAGES) | st.binary(max_size=64),
                             st.sampled_from([0o644 << 16, 0o120777 << 16, 0o40755 << 16, 0])),
                   min_size=1, max_size=10)
ZIPS = st.one_of(mutated(SEED_ZIPS, header=4096), st.builds(_zip, members, st.booleans()),
                 st.builds(_zip, members, st.booleans()).flatmap(lambda z: mutated([z])))


# -- zips ---------------------------------------------------------------------------------------------
@fuzz(1200)
@given(data=ZIPS, size=st.sampled_from([None, 8, 16]))
def test_fuzzed_zips_load_or_are_refused(tmp_path_factory, data, size):
    COUNTS["zips"] += 1
    path = _scratch(tmp_path_factory) / "data.zip"
    path.write_bytes(data)
    try:
        d = load_image_folder(path, image_size=size)
    except TLCoreError:
        return
    assert len(d.classes) >= 2 and d.train.images.dtype == torch.uint8 and len(d.train) > 0


_SCRATCH = {}


def _scratch(factory) -> Path:
    """One folder for a test's inputs, reused by its examples (a fresh one each would cost more than the input)."""
    if "dir" not in _SCRATCH:
        _SCRATCH["dir"] = factory.mktemp("fuzz")
    return _SCRATCH["dir"]


# -- images -------------------------------------------------------------------------------------------
@fuzz(1500)
@given(data=mutated(IMAGES), size=st.sampled_from([8, 28, 64]))
def test_fuzzed_image_files_decode_or_are_refused(tmp_path_factory, data, size):
    COUNTS["images (files)"] += 1
    try:
        arr, _ = decode_image(data, size)
        assert arr.shape == (size, size, 3) and arr.dtype == np.uint8
    except ImageRejected:
        pass
    path = _scratch(tmp_path_factory) / "drawing.png"
    path.write_bytes(data)
    try:
        x = sketch_batch([str(path)], InputSpec(1, 28, (0.5,), (0.5,)))
        assert x.shape == (1, 1, 28, 28)
    except TLCoreError:
        pass


ARRAYS = hnp.arrays(st.sampled_from([np.uint8, np.float32, np.float64, np.int16, np.int64, np.bool_]),
                    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=48))
SKETCHES = st.one_of(ARRAYS, st.none(), st.text(max_size=10),
                     st.fixed_dictionaries({}, optional={"composite": ARRAYS | st.none(), "background": ARRAYS | st.none(),
                                                         "layers": st.lists(ARRAYS | st.none(), max_size=2)}))


@fuzz(700)
@given(sketch=SKETCHES)
def test_fuzzed_canvases_become_a_digit_or_are_refused(sketch):
    COUNTS["images (canvases)"] += 1
    try:
        out = to_mnist(sketch)
    except TLCoreError:
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8


@pytest.mark.parametrize("sketch", ["\x00", {"composite": np.zeros((0, 5))}])  # found by the fuzzer
def test_a_canvas_that_is_no_file_or_has_no_pixels_is_refused(sketch):
    with pytest.raises(TLCoreError):
        to_mnist(sketch)


def test_a_zip_member_with_no_name_is_refused(tmp_path):
    """Found by the fuzzer: zipfile's own ``is_dir()`` raised IndexError on it."""
    path = tmp_path / "d.zip"
    path.write_bytes(_zip([("a/1.png", IMAGES[0], 0), ("b/1.png", IMAGES[0], 0), ("", IMAGES[0], 0)], deflate=False))
    with pytest.raises(TLCoreError, match="a member with no name"):
        load_image_folder(path)


@pytest.mark.parametrize("metrics", [{"summary": True}, {"test": 1}, {"dataset": {"splits": [1]}}, [1]])
def test_a_damaged_metrics_file_costs_its_figures_not_the_run(trained_run, tmp_path, metrics):
    """Found by the fuzzer: the runs table and the card failed on a metrics.json section of another type."""
    folder = shutil.copytree(trained_run[0], tmp_path / "run")
    (folder / "metrics.json").write_text(json.dumps(metrics))
    assert run_row(folder)["backbone"] == "lenet5" and "## Metrics" in model_card(folder)


# -- run folders -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real saved run (digits, one epoch) with every file a run has, and its data."""
    data = load_dataset("digits")
    folder = tmp_path_factory.mktemp("good") / "good"
    train(RunConfig(dataset="digits", epochs=1), data=data, out=folder)
    return folder, data


RUN_FILES = ["config.json", "model.safetensors", "metrics.json", "replay.safetensors", "resume/state.json",
             "resume/source.json", "resume/state.safetensors"]


@st.composite
def run_mutation(draw, folder: Path):
    name = draw(st.sampled_from(RUN_FILES))
    data = (folder / name).read_bytes()
    if name.endswith(".json") and draw(st.booleans()):
        return name, json.dumps(draw(json_mutated(json.loads(data)))).encode()
    if name.endswith(".safetensors"):
        header = 8 + int.from_bytes(data[:8], "little")
        return name, draw(mutated([data], header=header))
    return name, draw(mutated([data]))


def _check_run(folder: Path, data) -> None:
    """Everything the app and the CLI do with a run folder: a result or a TLCoreError, nothing else."""
    list_runs(folder.parent)
    read_metrics(folder)
    for look in (run_row, model_card, lambda f: continuable(f, 3), lambda f: load_replay(f, ["0", "1"])):
        try:
            look(folder)
        except TLCoreError:
            pass
    try:
        model, _ = load_run(folder)
    except TLCoreError:
        return
    x = torch.zeros(2, model.spec.channels, model.spec.size, model.spec.size)
    assert model(x).shape == (2, model.num_classes)


@pytest.mark.fuzz  # its @given is inside: it fuzzes copies of a run made once
def test_fuzzed_run_folders_load_or_are_refused(trained_run, tmp_path_factory):
    good, data = trained_run
    scratch = tmp_path_factory.mktemp("runs")

    @fuzz(500)
    @given(change=run_mutation(good))
    def check(change):
        COUNTS["run folders"] += 1
        folder = scratch / "run"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(good, folder)
        name, content = change
        (folder / name).write_bytes(content)
        _check_run(folder, data)

    check()


# -- config values -------------------------------------------------------------------------------------
VALUES = st.one_of(JSON, st.sampled_from([0, -1, 1, 2, 0.5, 1e309, float("nan"), "", "auto", "none", "sgd", "adamw",
                                          "onecycle", "digits", "lenet5", True, False, [], {}]))
FIELD_NAMES = [f for f in RunConfig.__dataclass_fields__]


@fuzz(1200)
@given(values=st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), VALUES, max_size=6))
def test_fuzzed_config_values_validate_or_are_refused(values):
    COUNTS["config values"] += 1
    for make in (lambda: RunConfig.from_dict(values).validate(), lambda: RunConfig.from_saved(values).validate(),
                 lambda: RunConfig.check(**{k: v for k, v in values.items() if k in FIELD_NAMES}),
                 lambda: parse_shots(str(values.get("shots", values)))):
        try:
            make()
        except TLCoreError:
            pass


# -- the app's handlers (API payloads) -----------------------------------------------------------------
STRINGS = ["digits", "upload a zip…", "1-digits", "saved: good", "saved: ../good", "saved: /etc", "saved: ",
           "../../etc/passwd", "/etc/passwd", "bundled: lenet5-mnist", "onnx", "torchscript", "counts",
           "row-normalized", "", "nan", "1e309", "-1", "0", "3", "<b>*x*</b>", "lenet5", "none", "imagenet",
           "conv1, fc2", "all", "1, 2, all", str(ROOT / "assets" / "models" / "lenet5-mnist")]
PAYLOAD = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(), st.text(max_size=12),
                    st.sampled_from(STRINGS), st.lists(st.sampled_from(STRINGS) | st.text(max_size=4), max_size=3))


def _snapshot(root: Path) -> dict[str, float]:
    """Every path under ``root`` but the sessions' own folders and the fuzzer's inputs, with its mtime.
    (Gradio's own file cache, tmp/gradio, holds the images a handler returns, as when served; the
    app's ``delete_cache`` empties it.)"""
    out = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if rel != "tmp" and not rel.startswith(("tmp/tlcore-session-", "tmp/tlcore-owner-", "tmp/gradio", "inputs")):
            out[rel] = p.lstat().st_mtime
    return out


@pytest.fixture(scope="module")
def jail(tmp_path_factory, trained_run):
    """cwd, TMPDIR, runs and cache folders inside one folder; one saved run in the runs folder."""
    root = tmp_path_factory.mktemp("jail")
    for sub in ("cwd", "tmp", "runs", "cache", "inputs"):
        (root / sub).mkdir()
    shutil.copytree(trained_run[0], root / "runs" / "good")
    mp = pytest.MonkeyPatch()
    mp.chdir(root / "cwd")
    for var, sub in (("TMPDIR", "tmp"), ("TLCORE_RUNS_DIR", "runs"), ("TLCORE_CACHE_DIR", "cache")):
        mp.setenv(var, str(root / sub))
    mp.setattr(tempfile, "tempdir", str(root / "tmp"))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def app_session(jail, trained_run):
    from tlcore.ui.session import RunRecord, Session

    s = Session()
    folder = s.folder / "1-digits"
    shutil.copytree(trained_run[0], folder)
    model, _ = load_run(folder)
    result = train(RunConfig(dataset="digits", epochs=1), data=trained_run[1], out=folder)
    s.add_run(RunRecord("1-digits", result, trained_run[1], folder))
    s.dataset = trained_run[1]
    yield s
    s.cleanup()


def _handlers():
    from tlcore.ui import (capture_tab, compare_tab, data_tab, draw_tab, evaluate_insight, evaluate_tab, model_tab,
                           train_tab)

    def start(s, *values):  # only refusals: a valid payload would train for real (tested elsewhere)
        try:
            train_tab.config(s, dict(zip(train_tab.FIELDS, values)))
        except (TLCoreError, TypeError, ValueError):
            out = list(train_tab.start(s, *values))
            assert "Not started" in out[-1][3]

    return {
        "load_dataset": (data_tab.load, 5), "choose_model": (model_tab.choose_model, 4),
        "train (refused)": (start, len(train_tab.FIELDS)), "evaluate": (evaluate_tab.show, 2),
        "evaluate_on": (evaluate_tab.show_other, 3), "export (refused)": (lambda s, n, f: evaluate_tab.export(
            s, n if n != "1-digits" else None, f), 2),
        "continue (refused)": (lambda s, n, e: list(train_tab.continue_training(s, n if n != "1-digits" else None, e)), 2),
        "predict": (draw_tab.predict, 2), "predict_digit": (lambda s, x: draw_tab.predict_digit(x), 1),
        "knows": (draw_tab.knows, 1), "add_drawing": (draw_tab.add_drawing, 3), "overlay": (compare_tab.overlay, 1),
        "delete_run": (lambda s, c: compare_tab.delete_run(s, c if c != "1-digits" else None), 1),
        "feature_space": (evaluate_insight.show_space, 2), "show_point": (evaluate_insight.show_point, 2),
        "gradcam": (evaluate_insight.explain_upload, 2), "toggle_gradcam": (evaluate_tab.toggle_gradcam, 2),
        "curve (refused)": (lambda s, *a: list(compare_tab.run_curve(s, *a)) if not isinstance(a[0], str) or
                            "all" not in a[0] and not any(ch.isdigit() for ch in a[0]) else None, 3),
        "add_unlabelled": (data_tab.add_pool, 1), "set_classes": (capture_tab.api_classes, 1),
        "add_example": (capture_tab.api_add, 2), "train_examples": (capture_tab.api_train, 0),
        "predict_example": (capture_tab.api_predict, 1),
    }


@st.composite
def payloads(draw, n: int, zips: list[str], images: list[str]):
    """``n`` values: anything JSON can carry, names the app knows (and paths it must not read), or an upload."""
    upload = st.sampled_from(zips + images)
    return [draw(PAYLOAD | upload) for _ in range(n)]


@pytest.mark.fuzz  # its @given is inside: the handlers need the inputs written first
def test_fuzzed_api_payloads_get_an_answer_or_a_message(jail, app_session, tmp_path_factory):
    handlers = _handlers()
    inputs = jail / "inputs"
    zips, images = [], []
    for i, z in enumerate(SEED_ZIPS + [_zip([(f"test/{c}/1.png", IMAGES[1], 0) for c in "0123456789"], True)]):
        (inputs / f"{i}.zip").write_bytes(z)
        zips.append(str(inputs / f"{i}.zip"))
    for i, im in enumerate(IMAGES[:6]):
        (inputs / f"{i}.png").write_bytes(im)
        images.append(str(inputs / f"{i}.png"))
    before, repo = _snapshot(jail), sorted(p.name for p in ROOT.iterdir())

    @fuzz(600)
    @given(call=st.sampled_from(sorted(handlers)).flatmap(
        lambda name: st.tuples(st.just(name), payloads(handlers[name][1], zips, images))))
    def check(call):
        name, args = call
        COUNTS["API payloads"] += 1
        try:
            handlers[name][0](app_session, *args)
        except gr.Error:
            pass

    check()
    assert _snapshot(jail) == before, "a handler wrote outside the session's folder"
    assert sorted(p.name for p in ROOT.iterdir()) == repo


@pytest.mark.parametrize("handler,args", [("knows", [True]), ("overlay", [1826]), ("predict", [[], False]),
                                          ("choose_model", [None, None, None, None]), ("delete_run", [["x"]]),
                                          ("evaluate_on", [["a"], 1, 2.0]), ("curve (refused)", [None, 3, 1])])
def test_payloads_of_the_wrong_type_are_refused_with_a_message(app_session, handler, args):
    """Found by the fuzzer: a number or a list where a name goes failed inside with AttributeError/TypeError."""
    if handler == "choose_model":  # the Model tab's own change handler: a toast, the choice left as it was
        with pytest.warns(UserWarning):
            _handlers()[handler][0](app_session, *args)
        return
    with pytest.raises(gr.Error, match="must be"):
        _handlers()[handler][0](app_session, *args)


def test_payloads_of_the_right_type_go_through(app_session):
    """The check must not refuse what a browser sends: a list of run names for the overlay (it once
    read list[str] as text and refused every overlay)."""
    from tlcore.ui import compare_tab

    fig, text = compare_tab.overlay(app_session, ["1-digits", "saved: good"])
    assert text == "2 runs: validation accuracy after each epoch." and len(fig.data) == 2
