"""Exports a consumer can use alone: ONNX and TorchScript, loaded in a fresh process without tlcore."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tlcore.runs.checkpoints import load_run
from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.errors import TLCoreError
from tlcore.runs.export import FORMATS, export_run
from tlcore.preprocess import prepare
from tlcore.training.train import train

from conftest import write_folder, zip_folder

# What a consumer writes: read the facts from the file, normalize, predict. No tlcore anywhere.
CONSUMER = r'''
import json, sys
import numpy as np
fmt, path, images = sys.argv[1:]
try:
    import tlcore
    sys.exit("tlcore is importable: this is not a fresh consumer")
except ImportError:
    pass
x = np.load(images)  # (N, C, S, S) in [0, 1], already at the model's input size
if fmt == "onnx":
    import onnxruntime as ort
    s = ort.InferenceSession(path)
    meta = {k: json.loads(v) for k, v in s.get_modelmeta().custom_metadata_map.items()}
    run = lambda a: s.run(None, {s.get_inputs()[0].name: a})[0]
else:
    import torch
    m = torch.jit.load(path)
    meta = {"classes": list(m.classes), "input_size": list(m.input_size), "mean": list(m.mean), "std": list(m.std)}
    run = lambda a: m(torch.from_numpy(a)).detach().numpy()
assert list(x.shape[1:]) == meta["input_size"], (x.shape, meta["input_size"])
mean, std = (np.array(meta[k], dtype=np.float32).reshape(1, -1, 1, 1) for k in ("mean", "std"))
logits = run(((x - mean) / std).astype(np.float32))
np.save(images.replace(".npy", "-logits.npy"), logits)
print(json.dumps([meta["classes"][i] for i in logits.argmax(1)]))
'''


@pytest.fixture(scope="module")
def lenet5(tmp_path_factory):
    """A LeNet-5 run on digits, and its data."""
    root = tmp_path_factory.mktemp("lenet5")
    train(RunConfig(dataset="digits", epochs=1), out=root / "lenet")
    return root / "lenet", load_dataset("digits")


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    """An EfficientNet-Lite0 (ImageNet weights, offline) run on photos, and its data."""
    root = tmp_path_factory.mktemp("lite0")
    photos = write_folder(root / "photos", {"ants": 80, "bees": 80}, size=32)  # 20% test: 32 images
    train(RunConfig(dataset=str(photos), backbone="efficientnet_lite0", weights="imagenet", preset="linear-probe",
                    epochs=1, image_size=64), out=root / "lite0")
    return root / "lite0", load_dataset(str(photos))


@pytest.mark.slow  # a fresh interpreter per export: the consumer has no tlcore
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", ["lenet5", "lite0"])
def test_an_export_agrees_with_pytorch_and_stands_alone(request, name, fmt, tmp_path):
    folder, data = request.getfixturevalue(name)
    out = export_run(folder, fmt, tmp_path / f"model{FORMATS[fmt][0]}")
    assert (tmp_path / f"model.MODEL_CARD.md").read_text().startswith("# Model card")
    model, _ = load_run(folder)
    images = data.test.images[:32]
    x = prepare(images, model.spec)
    with torch.no_grad():
        want = model.eval()(x).numpy()
    spec = model.spec
    plain = x * torch.tensor(spec.std).view(1, -1, 1, 1) + torch.tensor(spec.mean).view(1, -1, 1, 1)
    np.save(tmp_path / "images.npy", plain.numpy())
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    done = subprocess.run([sys.executable, "-I", str(script), fmt, str(out), str(tmp_path / "images.npy")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.load(tmp_path / "images-logits.npy")
    assert len(images) == 32 and np.abs(got - want).max() < 1e-4
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [model.classes[i] for i in want.argmax(1)]


def test_the_cli_exports_with_a_card(lenet5, tmp_path, cli):
    out = cli("export", "--checkpoint", str(lenet5[0]), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--json")
    assert out.returncode == 0, out.stderr
    said = json.loads(out.stdout.strip().splitlines()[-1])
    assert said["export"].endswith("m.onnx") and "Intended use" in open(said["card"]).read()


def test_an_unknown_format_names_the_valid_ones(lenet5):
    with pytest.raises(TLCoreError, match="Valid formats: 'onnx', 'torchscript'"):
        export_run(lenet5[0], "tflite")


def test_evaluate_on_a_test_only_zip_counts_every_image(lenet5, tmp_path, cli):
    for prefix in ("test/", ""):  # only a test/ folder, or no split folders at all
        layout = {f"{prefix}{c}": 2 + c for c in range(10)}  # 65 images
        folder = write_folder(tmp_path / f"set-{prefix[:-1] or 'flat'}", layout, size=8, rgb=False)
        out = cli("evaluate", "--checkpoint", str(lenet5[0]), "--dataset",
                  str(zip_folder(folder, tmp_path / f"{folder.name}.zip")), "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1])["size"] == 65  # every image, none held back


def test_evaluate_refuses_other_classes(tmp_path):
    from tlcore.data import load_labelled

    folder = write_folder(tmp_path / "pets", {"test/cat": 3, "test/dog": 3}, size=8)
    with pytest.raises(TLCoreError, match=r"do not match the run's: missing 0, 1.*not known to the run: cat, dog"):
        load_labelled(folder, [str(i) for i in range(10)])
