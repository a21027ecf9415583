"""A paused run's state on disk: safetensors + JSON, read back in a fresh process, resuming bitwise."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, quick
from tlcore.errors import TLCoreError
from tlcore.training.state import TENSORS_FILE, TREE_FILE, LoopState
from tlcore.training.train import train

CONFIGS = {
    "augmented-onecycle-sgd": {"augment": True, "scheduler": "onecycle"},
    "feature-cache-step-adamw": {"preset": "linear-probe", "augment": False, "scheduler": "step", "step_size": 1,
                                 "optimizer": "adamw"},
}

# A fresh interpreter: reads the state from disk, resumes, writes the finished weights and history.
RESUME = """
import json, sys, torch
from safetensors.torch import save_file
from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.training.state import LoopState
from tlcore.training.train import train
cfg, folder, threads = RunConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
r = train(cfg, data=load_dataset("digits"), resume=LoopState.load(folder))
save_file({k: v.contiguous() for k, v in r.model.state_dict().items()}, folder + "/final.safetensors")
print(json.dumps({"status": r.status, "history": [vars(e) for e in r.history], "test": r.test.accuracy}))
"""


@pytest.mark.slow  # a fresh interpreter: nothing but the files carries the state
@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_paused_run_written_to_disk_resumes_bitwise_in_a_fresh_process(digits, tmp_path, name):
    from safetensors.torch import load_file

    cfg = quick(epochs=4, **CONFIGS[name])
    whole = train(cfg, data=digits)
    paused = train(cfg, data=digits, budget_s=0)  # one epoch, then a pause at the boundary
    assert paused.status == "paused" and paused.resume.epochs_done == 1
    folder = paused.resume.save(tmp_path / "state")
    assert sorted(p.name for p in folder.iterdir()) == sorted([TENSORS_FILE, TREE_FILE])
    out = subprocess.run([sys.executable, "-c", RESUME, json.dumps(cfg.to_dict()), str(folder),
                          str(torch.get_num_threads())], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    timing = ("images_per_second", "seconds", "eta_seconds")
    assert got["status"] == "completed" and got["test"] == whole.test.accuracy
    assert [{k: v for k, v in h.items() if k not in timing} for h in got["history"]] == \
           [{k: v for k, v in vars(e).items() if k not in timing} for e in whole.history]
    final = load_file(str(folder / "final.safetensors"))
    assert all(torch.equal(final[k], v) for k, v in whole.model.state_dict().items())


def test_the_file_form_keeps_every_kind_of_value(tmp_path):
    """Optimizer state is keyed by int, AdamW's betas are a tuple, RNG states are uint8: all come back."""
    tree = {"epochs_done": 3, "state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.randn(2, 3)}},
            "groups": [{"betas": (0.9, 0.999), "lr": 0.1 / 3, "params": [0, 1]}], "rng": torch.get_rng_state(),
            "best": {"loss": float("inf"), "weights": None}, "none": None, "flag": True, "name": "sgd",
            "__tensor__": "a key that looks like a marker"}
    back = LoopState.load(LoopState(tree).save(tmp_path)).state_dict()
    assert back["state"][0]["step"].item() == 5.0 and torch.equal(back["state"][0]["exp_avg"], tree["state"][0]["exp_avg"])
    assert back["groups"][0]["betas"] == (0.9, 0.999) and back["groups"][0]["lr"] == 0.1 / 3
    assert torch.equal(back["rng"], tree["rng"]) and back["best"] == {"loss": float("inf"), "weights": None}
    assert (back["none"], back["flag"], back["name"], back["__tensor__"]) == (None, True, "sgd", tree["__tensor__"])


@pytest.mark.parametrize("damage", ["missing", "not json", "foreign format", "truncated tensors"])
def test_a_damaged_state_folder_is_refused_with_its_name(tmp_path, damage):
    folder = LoopState({"epochs_done": 1, "w": torch.ones(3)}).save(tmp_path / "state")
    if damage == "missing":
        (folder / TENSORS_FILE).unlink()
    elif damage == "not json":
        (folder / TREE_FILE).write_text("{")
    elif damage == "foreign format":
        (folder / TREE_FILE).write_text(json.dumps({"format": "something/9", "state": {}}))
    else:
        (folder / TENSORS_FILE).write_bytes((folder / TENSORS_FILE).read_bytes()[:20])
    with pytest.raises(TLCoreError, match="holds no readable paused-run state"):
        LoopState.load(folder)


def test_a_state_holds_nothing_that_needs_pickle(tmp_path):
    with pytest.raises(TypeError, match="cannot save a object"):
        LoopState({"epochs_done": 0, "x": object()}).save(tmp_path)


@pytest.mark.slow  # three trainings
def test_resuming_leaves_the_state_it_resumed_from_as_it_was(digits):
    """torch's optimizer keeps tensors it is given: resuming twice from one state must give one result."""
    cfg = quick(epochs=4, augment=True)
    paused = train(cfg, data=digits, budget_s=0)
    first = train(cfg, data=digits, resume=paused.resume)
    again = train(cfg, data=digits, resume=paused.resume)
    assert [e.val_loss for e in again.history] == [e.val_loss for e in first.history]
    a, b = first.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
