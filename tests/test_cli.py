"""``python -m tlcore datasets|backbones``: the JSON the issue specifies, and one-line errors.

In this process (``cli``: ``tlcore.cli.main``); the command as a user runs it, for its exit codes
and what ``python -m tlcore`` itself does, at the end."""
from __future__ import annotations

import json
import runpy
import sys

import pytest

from conftest import write_folder


def test_lists(cli):
    out = cli("datasets")
    assert out.returncode == 0 and out.stdout.split()[0] == "digits" and "cifar100" in out.stdout
    out = cli("backbones")
    assert out.returncode == 0 and "efficientnet_lite0" in out.stdout and "timm:<name>" in out.stdout


def test_describe_digits_needs_no_data_folder(tmp_path, cli):
    out = cli("datasets", "--describe", "digits", "--json", env={"TLCORE_DATA_DIR": str(tmp_path / "nothing")})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"name": "digits", "classes": [str(i) for i in range(10)], "channels": 1,
                                      "size": 8, "splits": {"train": 1295, "val": 143, "test": 359}}


def test_describe_mnist_and_the_cifar_zip(shared_data, cli):
    mnist = json.loads(cli("datasets", "--describe", "mnist", "--json").stdout)
    assert mnist["splits"] == {"train": 54001, "val": 5999, "test": 10000} and mnist["size"] == 28
    zpath = shared_data / "cifar10-mini.zip"
    c = json.loads(cli("datasets", "--describe", str(zpath), "--json").stdout)
    assert c["name"] == "cifar10-mini" and c["channels"] == 3 and c["size"] == 32
    assert c["splits"] == {"train": 9000, "val": 1000, "test": 2000} and len(c["classes"]) == 10


def test_describe_a_folder_with_options(tmp_path, cli):
    root = write_folder(tmp_path / "toys", {"a": 12, "b": 12})
    out = cli("datasets", "--describe", str(root), "--json", "--samples-per-class", "3", "--image-size", "12")
    d = json.loads(out.stdout)
    assert d["splits"]["train"] == 6 and d["size"] == 12


def test_efficientnet_linear_probe_offline(cli):
    out = cli("backbones", "--describe", "efficientnet_lite0", "--weights", "imagenet", "--num-classes", "10",
              "--preset", "linear-probe", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert [g["name"] for g in d["groups"] if g["trainable"]] == ["head"]
    assert d["trainable_params"] == 12_810 and d["total_params"] == 3_383_818
    assert all(g["trainable"] in (0, g["params"]) for g in d["groups"])


@pytest.mark.parametrize("args,match", [
    (("datasets", "--describe", "nope"), "Unknown dataset 'nope'"),
    (("datasets", "--describe", "cifar100", "--no-download", "--data-dir", "/nonexistent"), "/nonexistent/cifar-100-python"),
    (("datasets", "--describe", "/no/such.zip"), "No such dataset, folder or zip"),
    (("datasets", "--describe", "digits", "--val-fraction", "2"), "val_fraction must be a fraction"),
    (("backbones", "--describe", "alexnet"), "Unknown backbone 'alexnet'"),
    (("backbones", "--describe", "lenet5", "--preset", "half"), "Unknown preset 'half'"),
    (("backbones", "--describe", "lenet5", "--num-classes", "x"), "invalid int value"),
    (("fly",), "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(args, match, cli):
    out = cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in out.stderr


def test_a_broken_zip_is_one_line(tmp_path, cli):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    out = cli("datasets", "--describe", str(bad))
    assert out.returncode == 2 and out.stderr.strip() == "error: broken.zip is not a valid zip file (File is not a zip file)."


def test_python_dash_m_tlcore_is_the_command_line(monkeypatch, capsys):
    """``python -m tlcore`` runs ``tlcore/__main__.py``: the CLI's main, its code the exit status."""
    monkeypatch.setattr(sys, "argv", ["tlcore", "datasets", "--describe", "nope"])
    with pytest.raises(SystemExit) as e:
        runpy.run_module("tlcore", run_name="__main__")
    assert e.value.code == 2 and "Unknown dataset 'nope'" in capsys.readouterr().err


def test_the_command_as_a_user_runs_it_exits_0_or_2_with_one_line(cli_process):
    """What only a process shows: the exit status the shell sees, and a mistake's one line on
    stderr with nothing else there (no traceback, no warning printed as the modules load)."""
    ok = cli_process("datasets")
    assert ok.returncode == 0 and ok.stdout.split()[0] == "digits"
    bad = cli_process("backbones", "--describe", "alexnet")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "Unknown backbone 'alexnet'" in lines[0], bad.stderr
