"""The public package: ``from tlcore import ...`` gives what the README's Python section uses,
each documented, and the example in the package docstring runs as written."""
from __future__ import annotations

import subprocess
import sys

import pytest

import tlcore
from conftest import ROOT


@pytest.mark.parametrize("name", tlcore.__all__)
def test_every_public_name_imports_and_says_what_it_is(name):
    obj = getattr(tlcore, name)
    assert (obj.__doc__ or "").strip(), f"tlcore.{name} has no docstring"


@pytest.mark.slow  # only a fresh interpreter shows what an import loads
def test_importing_the_config_does_not_load_torch():
    code = "import tlcore.config, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        tlcore.trian  # noqa: B018


def test_the_package_example_trains_saves_loads_and_evaluates(tmp_path, monkeypatch):
    from tlcore import RunConfig, create_backbone, evaluate_run, load_dataset, load_run, train

    monkeypatch.chdir(ROOT)
    data = load_dataset("digits")
    cfg = RunConfig(dataset="digits", weights="assets/models/lenet5-mnist", preset="linear-probe", epochs=2)
    result = train(cfg, data=data, out=tmp_path / "probe")
    model, meta = load_run(tmp_path / "probe")
    again = evaluate_run(model, data.test, data.classes, run=meta["run"])
    assert again.accuracy == result.test.accuracy  # one precision rule: the run's own number, exactly
    assert create_backbone("lenet5", num_classes=3).num_classes == 3
