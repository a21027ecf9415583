"""A run is saved whole or not at all: SIGKILL at random moments of saving never leaves half a run.

A child process (forked, so it starts in milliseconds with the trained model in memory) saves the
same run again and again, through the trainer's own save (weights, config, metrics, replay sample,
training state, card), alternately into new folders and over one existing folder. The parent kills
it with SIGKILL after a seeded random delay, 20 times. Afterwards every listed run must load,
evaluate to the accuracy the run had, and continue (its state's fingerprints match its files);
everything else in the folder must be a hidden temporary, which the next save sweeps away.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch

from tlcore.runs.atomic import atomic_folder, atomic_write, is_temporary, sweep, write_text
from tlcore.runs.checkpoints import list_runs, load_run, save_run
from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.errors import TLCoreError
from tlcore.insight.evaluate import evaluate
from tlcore.models import create_backbone
from tlcore.training.resume import continuable
from tlcore.training.train import train
from tlcore.training.callbacks import SaveRun, run_callbacks
from tlcore.training.loop import Trainer

KILLS = 20
SEED = 17


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished digits run (with its end state, so saves include the resume folder), and its data."""
    data = load_dataset("digits", seed=0)
    cfg = RunConfig(dataset="digits", backbone="lenet5", epochs=1, batch_size=64)
    first = tmp_path_factory.mktemp("first") / "run"
    trainer = Trainer(cfg, callbacks=run_callbacks(cfg, out=first))
    trainer.setup(data)
    trainer.fit()
    result = trainer.finish()
    return trainer, result, data


def _save(trainer, result, out: Path) -> None:
    """The run's own save (its SaveRun callback, holding the end state), into ``out``."""
    next(cb for cb in trainer.callbacks if isinstance(cb, SaveRun)).save(trainer, result, out)


def _save_forever(trainer, result, root: Path, fd: int) -> None:
    """The child: save, save, save...; each save announced before ("s <i>") and after ("d <i>")."""
    torch.set_num_threads(1)  # a forked child has none of the parent's OpenMP threads: its pool would wait forever
    for i in range(10**6):
        out = root / ("again" if i % 2 else f"run-{os.getpid()}-{i}")
        os.write(fd, f"s {i}\n".encode())
        _save(trainer, result, out)
        os.write(fd, f"d {i}\n".encode())


def _one_kill(ctx, trainer, result, root: Path, delay: float) -> tuple[bool, int]:
    """Start a saving child, SIGKILL it ``delay`` s after its first save began. Returns (whether it
    died in the middle of a save, how many temporaries it left)."""
    r, w = os.pipe()
    child = ctx.Process(target=_save_forever, args=(trainer, result, root, w), daemon=True)
    child.start()
    os.close(w)
    said = os.read(r, 64)  # blocks until the first "s 0"
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    with os.fdopen(r, "rb") as f:
        said += f.read()
    last = [line for line in said.decode().split("\n") if line][-1]
    assert child.exitcode == -signal.SIGKILL
    return last.startswith("s "), sum(is_temporary(p) for p in root.iterdir())


def _measure_save(trainer, result, root: Path) -> float:
    t = time.perf_counter()
    _save(trainer, result, root / "timed")
    return time.perf_counter() - t


def test_sigkill_while_saving_never_leaves_half_a_run(trained, tmp_path):
    trainer, result, data = trained
    root = tmp_path / "runs"
    root.mkdir()
    save_s = _measure_save(trainer, result, root)
    rng, ctx = random.Random(SEED), mp.get_context("fork")
    # Kill anywhere in the child's first three saves (each child sweeps what the one before left).
    kills = [_one_kill(ctx, trainer, result, root, rng.uniform(0, 3 * save_s)) for _ in range(KILLS)]
    mid_save, left_temp = sum(k[0] for k in kills), sum(k[1] > 0 for k in kills)
    runs = list_runs(root)
    left = [p for p in root.iterdir() if p not in runs]
    print(f"\n{KILLS} kills, {mid_save} mid-save, {left_temp} left a temporary; one save {save_s * 1e3:.0f} ms; "
          f"{len(runs)} runs listed; now {len(left)} temporaries: {sorted(p.name[:16] for p in left)}")
    assert mid_save >= KILLS // 2, "most kills should land while a save was under way"
    assert all(is_temporary(p) for p in left), f"not a run and not a temporary: {left}"
    # The writers are dead: the next save (or a sweep) clears what they left, or puts back a run
    # that was being replaced when its writer died.
    assert sorted(sweep(root)) == sorted(left) and all(not is_temporary(p) for p in root.iterdir())
    runs = list_runs(root)
    assert sorted(runs) == sorted(root.iterdir())
    weights = trainer.model.state_dict()
    expected = evaluate(trainer.model, data.test.images, data.test.labels, data.classes).accuracy
    for run in runs:
        model, _ = load_run(run)
        assert all(torch.equal(t, weights[k]) for k, t in model.state_dict().items()), run.name
        assert evaluate(model, data.test.images, data.test.labels, data.classes).accuracy == expected
        assert continuable(run, 2).epochs_done == 1  # its training state matches its files


def test_a_failed_save_leaves_the_earlier_run(tmp_path):
    model = create_backbone("lenet5", num_classes=3)
    run = save_run(tmp_path / "run", model, ["a", "b", "c"], metrics={"note": "first"})
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_folder(run) as tmp:
            (tmp / "config.json").write_text("{}")
            raise RuntimeError("disk full")
    assert list_runs(tmp_path) == [run] and load_run(run)[1]["classes"] == ["a", "b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the temporary went with the error


def test_saving_over_a_folder_that_is_not_a_run_is_refused(tmp_path):
    keep = tmp_path / "photos"
    keep.mkdir()
    (keep / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(TLCoreError, match="not what is saved here"):
        save_run(keep, create_backbone("lenet5", num_classes=2), ["a", "b"])
    with pytest.raises(TLCoreError, match="not what is saved here"):  # before any training, not after it
        train(RunConfig(dataset="digits", epochs=200), out=keep)
    assert [p.name for p in keep.iterdir()] == ["holiday.jpg"]


def test_a_file_written_atomically_is_old_or_new(tmp_path):
    path = write_text(tmp_path / "a.txt", "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path) as tmp:
            tmp.write_text("half of the ne")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_listing_skips_temporaries_and_truncated_weights(tmp_path):
    model = create_backbone("lenet5", num_classes=2)
    good = save_run(tmp_path / "good", model, ["a", "b"])
    for name in (".good.tmp-1-0123abcd", ".hidden", "cut"):
        save_run(tmp_path / "x", model, ["a", "b"]).rename(tmp_path / name)
    weights = tmp_path / "cut" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])  # a file written before this module, cut short
    assert list_runs(tmp_path) == [good]
