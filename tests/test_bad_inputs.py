"""The bad-input matrix: every case through the engine and through the running app's API.

Each case is refused with its reason, in the engine (a TLCoreError naming the problem) and in
the app (the same reason in the endpoint's output, or a one-line API error, never a
traceback); after each, the app still answers and the session's dataset is still the one it had.
Checkpoint cases have no app endpoint (the app never loads a checkpoint a visitor sends), so
they go through the engine and the CLI.
"""
from __future__ import annotations

import html

import io
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, class_image, encrypted_zip, ok_members, png_bytes, symlink_member, write_zip, zip_bomb
from tlcore.runs.checkpoints import load_run, save_run
from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.errors import TLCoreError
from tlcore.models import create_backbone, freeze
from tlcore.data.sketch import to_mnist

UPLOAD = "upload a zip…"


# -- how each kind of case is fed ----------------------------------------------------------------
def zip_of(members) -> Callable[[Path], Path]:
    return lambda tmp: write_zip(tmp / "upload.zip", members)


def raw_file(data: bytes, name="upload.zip") -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name
    return make


def png_bomb() -> bytes:
    """A valid PNG header claiming 100,000 x 100,000 pixels: tiny file, 10 gigapixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def many_classes(n: int) -> list[tuple[str, bytes]]:
    png = png_bytes(class_image(0, 8))
    return [(f"c{i:04d}/0.png", png) for i in range(n)]


def nested_zip(tmp: Path) -> Path:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for name, data in ok_members():
            z.writestr(name, data)
    return write_zip(tmp / "upload.zip", [("a/inner.zip", inner.getvalue()), ("b/inner.zip", inner.getvalue())])


@dataclass
class Case:
    kind: str  # upload | hyper | model | sketch | dataset
    arg: object
    match: str  # what the engine's message says
    api_match: str | None = None  # what the app says, when its words differ (it offers choices, not paths)


CASES: dict[str, Case] = {
    # Uploads: zips of class folders.
    "zip slip": Case("upload", zip_of(ok_members() + [("a/../../evil.png", png_bytes(class_image(0)))]),
                     "leaves its folder"),
    "absolute path in zip": Case("upload", zip_of(ok_members() + [("/tmp/evil.png", png_bytes(class_image(0)))]),
                                 "absolute path"),
    "symlink in zip": Case("upload", zip_of(ok_members() + [symlink_member("a/l.png", "/etc/passwd")]), "a link"),
    "ratio bomb": Case("upload", lambda tmp: zip_bomb(tmp / "upload.zip"), "zip bomb"),
    "encrypted zip": Case("upload", lambda tmp: encrypted_zip(tmp / "upload.zip"), "encrypted"),
    "not a zip": Case("upload", raw_file(b"just some text"), "not a valid zip"),
    "truncated zip": Case("upload", lambda tmp: raw_file(write_zip(tmp / "t.zip", ok_members()).read_bytes()[:300])(tmp),
                          "not a valid zip"),
    "empty file": Case("upload", raw_file(b""), "not a valid zip"),
    "nested zips only": Case("upload", nested_zip, r"No images in class folders.*nested archives"),
    "text files only": Case("upload", zip_of([("a/x.txt", b"x"), ("b/y.csv", b"1,2")]), "No images in class folders"),
    "corrupt images only": Case("upload", zip_of([("a/0.png", b"\x89PNG\r\n\x1a\nxx"), ("b/0.jpg", b"\xff\xd8junk")]),
                                "No readable training images"),
    "empty class folders": Case("upload", zip_of([("a/", b""), ("b/", b"")]), "No images in class folders"),
    "a single class": Case("upload", zip_of([("only/0.png", png_bytes(class_image(0))),
                                             ("only/1.png", png_bytes(class_image(1)))]), "at least 2"),
    "test classes differ": Case("upload", zip_of([(f"train/{c}/{i}.png", png_bytes(class_image(k, seed=i)))
                                                  for k, c in enumerate("ab") for i in range(3)]
                                                 + [("test/a/0.png", png_bytes(class_image(0))),
                                                    ("test/zebra/0.png", png_bytes(class_image(1)))]),
                                "classes that train/ lacks: zebra"),
    "too many classes": Case("upload", zip_of(many_classes(1001)), "1,001 class folders; at most 1,000"),
    # Hyperparameters typed by students.
    "lr zero": Case("hyper", {"lr": 0}, r"Learning rate \(lr\) must be a number > 0 and <= 10, got 0"),
    "lr negative": Case("hyper", {"lr": -0.5}, r"Learning rate \(lr\) must be a number > 0 and <= 10, got -0.5"),
    "lr huge": Case("hyper", {"lr": 1e6}, r"Learning rate \(lr\) must be a number > 0 and <= 10"),
    "lr missing": Case("hyper", {"lr": None}, r"Learning rate \(lr\) must be a number > 0 and <= 10, got nothing \(an empty box, or not a number\)"),
    "epochs zero": Case("hyper", {"epochs": 0}, r"Epochs must be a whole number > 0 and <= 200, got 0"),
    "epochs over the cap": Case("hyper", {"epochs": 100000}, r"Epochs must be a whole number > 0 and <= 200"),
    "epochs fractional": Case("hyper", {"epochs": 2.5}, r"Epochs must be a whole number > 0 and <= 200, got 2.5"),
    "batch size zero": Case("hyper", {"batch_size": 0}, r"Batch size must be a whole number > 0 and <= 4096"),
    "batch size over the cap": Case("hyper", {"batch_size": 10**6}, r"Batch size must be a whole number > 0 and <= 4096"),
    "body lr multiplier negative": Case("hyper", {"body_lr_mult": -1}, r"Body learning-rate multiplier \(body_lr_mult\) must be a number >= 0"),
    "seed negative": Case("hyper", {"seed": -3}, r"Seed must be a whole number >= 0"),
    "early stopping negative": Case("hyper", {"early_stopping": -1}, r"Early stopping patience \(early_stopping\) must be a whole number >= 0"),
    # Model choices.
    "unknown backbone": Case("model", ("resnet9000", "none", ""), r"Unknown backbone 'resnet9000'. Valid backbones"),
    "unknown timm model": Case("model", ("timm:not_a_model", "none", ""), r"Unknown timm model 'not_a_model'. Names come from timm.list_models\(\)"),
    "imagenet for lenet5": Case("model", ("lenet5", "imagenet", ""), r"lenet5 has no ImageNet weights. Use weights 'none'",
                                r"Unknown weights 'imagenet' for lenet5. Valid weights: none, bundled run"),
    "a server path as weights": Case("model", ("lenet5", "/etc", ""), r"'/etc' is not a tlcore run: model.safetensors is missing",
                                     r"Unknown weights '/etc' for lenet5. Valid weights: none"),
    "unknown layer group": Case("model", ("lenet5", "none", "conv9"), r"Unknown layer group 'conv9' for lenet5"),
    "freezing the head": Case("model", ("lenet5", "none", "head"), r"The head is new and always trains"),
    # Drawings sent to predict_digit.
    "drawing: not an image": Case("sketch", b"hello, not a picture", r"is not a readable image"),
    "drawing: truncated png": Case("sketch", png_bytes(class_image(0, 64))[:60], r"is not a readable image"),
    "drawing: decompression bomb": Case("sketch", png_bomb(), r"over the pixel limit"),
    # Dataset names: only registered names or an upload.
    "a server path as dataset": Case("dataset", "/etc/passwd", r"not a valid zip",
                                     r"Unknown dataset '/etc/passwd'. Valid datasets: 'digits'|/etc/passwd is not in the list of choices: \['digits'"),
    "unknown dataset name": Case("dataset", "imagenet-22k", r"Unknown dataset 'imagenet-22k'",
                                 r"Unknown dataset 'imagenet-22k'|imagenet-22k is not in the list of choices"),
}
assert len(CASES) >= 30


# -- the engine ----------------------------------------------------------------------------------
def engine(case: Case, tmp: Path) -> None:
    if case.kind == "upload":
        load_dataset(str(case.arg(tmp)))
    elif case.kind == "hyper":
        RunConfig(**case.arg).validate()
    elif case.kind == "model":
        backbone, weights, frozen = case.arg
        model = create_backbone(backbone, weights=weights, num_classes=10)
        freeze(model, frozen=[g for g in frozen.split(",") if g])
    elif case.kind == "sketch":
        (tmp / "drawing.png").write_bytes(case.arg)
        to_mnist(str(tmp / "drawing.png"))
    else:
        load_dataset(case.arg)


@pytest.mark.parametrize("name", list(CASES))
def test_the_engine_refuses_with_the_reason(name, tmp_path):
    with pytest.raises(TLCoreError, match=CASES[name].match):
        engine(CASES[name], tmp_path)


# -- checkpoints: data, never code (engine and CLI; the app loads no visitor's checkpoint) ------
class _Evil:
    def __reduce__(self):
        return (Path("/tmp/tlcore-pwned").write_text, ("pwned",))


CHECKPOINT_DAMAGE = {
    "a pickle as model.safetensors": (lambda d: (d / "model.safetensors").write_bytes(pickle.dumps(_Evil())),
                                      "not a readable safetensors"),
    "truncated safetensors": (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100]),
                              "not a readable safetensors"),
    "another backbone's config": (lambda d: (d / "config.json").write_text(
        (d / "config.json").read_text().replace('"lenet5"', '"resnet18"')), "do not fit a resnet18"),
    "wrong shapes (class count)": (lambda d: (d / "config.json").write_text(
        (d / "config.json").read_text().replace('"num_classes": 3', '"num_classes": 4').replace(
            '"classes": [\n    "a",', '"classes": [\n    "z",\n    "a",')), "do not fit a lenet5"),
    "config is not JSON": (lambda d: (d / "config.json").write_text("{not json"), "not a tlcore run config"),
    "no weights file": (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing"),
}


@pytest.mark.parametrize("name", list(CHECKPOINT_DAMAGE))
def test_damaged_checkpoints_are_refused_by_engine_and_cli(name, tmp_path, cli):
    damage, match = CHECKPOINT_DAMAGE[name]
    run = save_run(tmp_path / "run", create_backbone("lenet5", num_classes=3), ["a", "b", "c"])
    damage(run)
    with pytest.raises(TLCoreError, match=match):
        load_run(run)
    png = tmp_path / "x.png"
    png.write_bytes(png_bytes(class_image(0, 28, rgb=False)))
    r = cli("predict", "--checkpoint", str(run), str(png))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not Path("/tmp/tlcore-pwned").exists()


# -- the app (the session's server; this module's one client session) ----------------------------
@pytest.fixture(scope="module")
def client(app):
    from e2e_pages import api_client

    c = api_client(app.url, digits_and_lenet5=False)
    summary = c.predict("digits", None, 0, 0.1, 0, api_name="/load_dataset")[0]
    assert "train **1,295**" in summary
    c.predict("lenet5", "none", "", False, api_name="/choose_model")
    yield c
    c.close()


TRAIN_DEFAULTS = {"epochs": 1, "batch_size": 64, "lr": 0.1, "optimizer": "sgd", "scheduler": "onecycle",
                  "body_lr_mult": 1.0, "label_smoothing": 0.1, "augment": "off", "early_stopping": 0, "seed": 0}


def api(case: Case, client, tmp: Path) -> str:
    """The app's answer to the case as text: the endpoint's output, or the API error's message."""
    from gradio_client import handle_file

    try:
        if case.kind == "upload":
            out = client.predict(UPLOAD, handle_file(str(case.arg(tmp))), 0, 0.1, 0, api_name="/load_dataset")
            return out[0]
        if case.kind == "dataset":
            return client.predict(case.arg, None, 0, 0.1, 0, api_name="/load_dataset")[0]
        if case.kind == "hyper":
            args = {**TRAIN_DEFAULTS, **case.arg}
            return "\n".join(str(x) for x in client.predict(*args.values(), api_name="/train")[:4])
        if case.kind == "model":
            backbone, weights, frozen = case.arg
            return client.predict(backbone, weights, frozen, False, api_name="/choose_model")[-1]
        (tmp / "drawing.png").write_bytes(case.arg)
        return str(client.predict(handle_file(str(tmp / "drawing.png")), api_name="/predict_digit"))
    except Exception as e:  # gradio_client raises the app's gr.Error as an AppError with its message
        return f"{type(e).__name__}: {e}"


@pytest.mark.parametrize("name", list(CASES))
def test_the_app_refuses_with_the_reason_and_keeps_serving(name, app, client, tmp_path):
    from gradio_client import handle_file

    case = CASES[name]
    said = html.unescape(api(case, client, tmp_path))  # Markdown and toasts: "<=" arrives as "&lt;="
    assert __import__("re").search(case.api_match or case.match, said), said
    assert "Traceback" not in said
    # Still answering, and the session still has its dataset (a refused upload loses nothing).
    one = tmp_path / "one.png"
    img = Image.new("L", (200, 200), 255)
    from PIL import ImageDraw

    ImageDraw.Draw(img).line([(100, 30), (100, 170)], fill=0, width=14)
    img.save(one)
    assert client.predict(handle_file(str(one)), api_name="/predict_digit")["label"] == "1"
    if case.kind in ("upload", "dataset") and not said.startswith("AppError"):  # (Gradio's own choice check)
        assert "train **1,295**" in said  # the previous summary is shown under the reason


def test_files_outside_what_the_app_serves_are_not_served(app, client, tmp_path):
    """Gradio's file route serves uploads and outputs only: not the app's code, not /etc, not
    another session's folder; and a path passed as an uploaded file is refused."""
    import httpx

    from e2e_server import http_call

    secret = Path(__import__("tempfile").mkdtemp(prefix="tlcore-session-")) / "secret.txt"
    secret.write_text("another session's file")
    base = app.url.rstrip("/")
    for target in ("/etc/passwd", str(ROOT / "app.py"), str(secret), "../../../../etc/passwd"):
        for route in (f"/gradio_api/file={target}", f"/file={target}"):
            r = httpx.get(base + route)
            assert r.status_code in (403, 404), (route, r.status_code)
            assert "root:x" not in r.text and "another session" not in r.text
    # Handing the server a path instead of an upload.
    h = httpx.Client(base_url=base, timeout=30)
    event_id = h.post("/gradio_api/call/predict_digit",
                      json={"data": [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}]}).json().get("event_id")
    with h.stream("GET", f"/gradio_api/call/predict_digit/{event_id}") as r:
        body = "".join(r.iter_text())
    assert body.startswith("event: error") and "another session" not in body
    assert http_call(app.url, "predict_digit", png_bytes(np.full((50, 50), 255, np.uint8)))[0] == "complete"
