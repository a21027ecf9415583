"""Ctrl-C in the CLI does what the README promises: the run ends within a step, keeps the best
epoch so far, is saved (marked stopped) and summarised; a second Ctrl-C quits at once.
Only a real process and a real SIGINT show this."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from conftest import ROOT
from tlcore.runs.checkpoints import load_run


def _start(out, *extra):
    cmd = [sys.executable, "-m", "tlcore", "train", "--dataset", "digits", "--backbone", "lenet5", "--epochs", "200",
           "--seed", "0", "--out", str(out), *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _interrupt_after(proc, epoch: int, times: int = 1) -> tuple[list[str], threading.Thread]:
    """SIGINT ``times`` times once the run reports ``epoch`` done; the stderr lines read so far and
    the thread that goes on reading them (join it before reading the last lines)."""
    lines, seen = [], threading.Event()

    def read():
        for raw in iter(proc.stderr.readline, ""):
            lines.append(raw)
            if f"epoch {epoch}/" in raw:
                seen.set()
        seen.set()  # the process ended first: the test's asserts say so

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert seen.wait(120), "the run never reported its epochs"
    for _ in range(times):
        proc.send_signal(signal.SIGINT)
    return lines, reader


def _finish(proc, reader) -> str:
    """The process's stdout once it ended. Not ``communicate()``: it would read stderr too, racing
    the reader thread for the last lines (a CI run lost the `tlcore evaluate` hint that way)."""
    stdout = proc.stdout.read()
    proc.wait(timeout=120)
    reader.join(timeout=30)
    return stdout


def test_ctrl_c_after_the_second_epoch_keeps_saves_and_summarises_the_run(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, "--json")
    lines, reader = _interrupt_after(proc, 2)
    stdout = _finish(proc, reader)
    assert proc.returncode == 130, "".join(lines)
    summary = json.loads(stdout.strip().splitlines()[-1])  # one JSON object, the last line
    assert len(stdout.strip().splitlines()) == 1
    assert summary["status"] == "stopped" and summary["best_epoch"] >= 2, summary
    assert summary["checkpoint"] == str(out)
    # Stopped means stopped: the test split is measured later, by `evaluate`, as the line says.
    assert summary["test_accuracy"] is None and any(f"tlcore evaluate {out}" in line for line in lines)
    saved = json.loads((out / "metrics.json").read_text())["summary"]
    assert saved["status"] == "stopped" and saved["best_epoch"] == summary["best_epoch"]
    assert f"Kept epoch {summary['best_epoch']}, the best so far" in saved["message"]
    model, meta = load_run(out)
    assert model.num_classes == 10 and meta["classes"] == [str(i) for i in range(10)]
    assert any("Stopping within a step" in line for line in lines)


def test_a_second_ctrl_c_quits_at_once(tmp_path):
    proc = _start(tmp_path / "run")
    _, reader = _interrupt_after(proc, 1, times=2)
    _finish(proc, reader)
    assert proc.returncode == 130
