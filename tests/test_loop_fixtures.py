"""The restructured loop against fixtures recorded from the one-function loop (see loop_fixtures.py).

Each case runs in a fresh process with the pinned arithmetic and must give the recorded bits:
weights, history and test probabilities. Where this machine's canary differs from the
recording machine's, its kernels round differently and bits cannot be compared: skipped, saying so.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "loop"


def _digest(case: str) -> dict:
    r = subprocess.run([sys.executable, str(HERE / "loop_fixtures.py"), "digest", case], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["lenet5-mnist-augment", "linear-probe-cached-zip", "budgeted-paused-resumed"])
def test_seeded_runs_are_bitwise_those_recorded_before_the_restructure(case, request):
    if case == "lenet5-mnist-augment":
        request.getfixturevalue("shared_data")  # skips without $TLCORE_DATA_DIR
    want = json.loads((FIXTURES / f"{case}.json").read_text())
    got = _digest(case)
    if got["canary"] != want["canary"]:
        pytest.skip(f"this CPU's kernels round differently from the recording machine's even with the pinned "
                    f"arithmetic (canary {got['canary'][:12]} vs {want['canary'][:12]}): bits cannot be compared")
    g, w = got["digest"], want["digest"]
    differ = sorted(k for k in w["weights"] if g["weights"].get(k) != w["weights"][k])
    assert not differ, f"weights differ from {want['recorded_from'][:12]}'s: {differ}"
    assert g["history"] == w["history"]
    assert (g["status"], g["best_epoch"], g.get("pauses")) == (w["status"], w["best_epoch"], w.get("pauses"))
    assert (g["test_accuracy"], g["test_probs"]) == (w["test_accuracy"], w["test_probs"])
