"""One run on two CPU processes with Gloo (torchrun's launcher): the same weights on both, every
image trained on once per epoch, one saved run, accuracy as one process gets."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


from e2e_server import free_port
from tlcore.runs.checkpoints import load_run
from tlcore.config import RunConfig
from tlcore.training.resume import continue_run
from tlcore.training.train import train

ROOT = Path(__file__).resolve().parents[1]


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1"}
    # --standalone: a rendezvous on a free local port (tests may run beside another launch).
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_both_ranks_keep_the_same_weights_and_share_every_epoch(tmp_path):
    done = torchrun(str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path), "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert len(r0["sums"]) == len(r1["sums"]) > 0 and r0["sums"] == r1["sums"]  # after every step
    for a, b in zip(r0["orders"], r1["orders"]):  # each epoch: disjoint shards covering the training split
        assert not set(a) & set(b) and sorted(a + b) == list(range(r0["n"]))
    assert r0["orders"][0] != r0["orders"][1]  # a new order every epoch
    assert r0["history"] == r1["history"]  # the epoch's metrics, summed across ranks, agree


def test_the_same_command_under_torchrun_trains_the_same_recipe(tmp_path):
    """Issue #30's command, in one process and in two: --batch-size is the global batch (split over
    the ranks), so both take the same steps at the same rate and end within a point; one run, one
    summary between the two ranks, and it goes on in one process."""
    args = ["-m", "tlcore", "train", "--dataset", "digits", "--backbone", "lenet5", "--epochs", "5", "--seed", "0",
            "--json"]
    done = torchrun(*args, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1  # one run, one summary: rank 0's
    ddp = json.loads(summaries[0])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    alone = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr[-3000:]
    one = json.loads([line for line in alone.stdout.splitlines() if line.startswith("{")][-1])
    _, meta = load_run(tmp_path / "run")  # the saved run loads in one process
    _, meta_one = load_run(tmp_path / "one")
    batch = meta_one["run"]["batch_size"]
    assert meta["run"]["batch_size"] == batch and meta["run"]["world_size"] == 2
    assert meta["run"]["effective_batch_size"] == batch == meta_one["run"]["effective_batch_size"]
    assert f"({batch // 2} each)" in meta["run"]["lr_scaling"]
    assert abs(ddp["test_accuracy"] - one["test_accuracy"]) <= 0.01, (ddp["test_accuracy"], one["test_accuracy"])
    # ... and it goes on in one process, from the state rank 0 saved.
    back = continue_run(tmp_path / "run", 7, out=tmp_path / "back")
    assert back.status == "completed" and len(back.history) == 7


def test_the_feature_cache_and_the_test_split_are_shared_across_ranks(tmp_path):
    """A linear probe from the bundled model: each rank computes half the features and predicts half
    the test images; gathered back in order, the result is one process's (within a point)."""
    probe = ["--weights", str(ROOT / "assets" / "models" / "lenet5-mnist"), "--preset", "linear-probe"]
    done = torchrun("-m", "tlcore", "train", "--dataset", "digits", *probe, "--batch-size", "16", "--epochs", "10",
                    "--json", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    test = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert test["size"] == 359  # every test image, once
    one = train(RunConfig(dataset="digits", weights=str(ROOT / "assets" / "models" / "lenet5-mnist"),
                          preset="linear-probe", batch_size=16, epochs=ddp["epochs"], lr=0.001, optimizer="adamw"))
    assert abs(ddp["test_accuracy"] - one.test.accuracy) <= 0.01, (ddp["test_accuracy"], one.test.accuracy)


def test_two_hosts_meet_at_a_rendezvous(tmp_path):
    """Two torchrun agents with --nnodes 2 and a c10d rendezvous, as two hosts would run them (here
    on one machine, each one process): one run, one summary between them, world_size 2."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "two-hosts",
           "-m", "tlcore", "train", "--dataset", "digits", "--epochs", "2", "--batch-size", "32", "--json",
           "--out", str(tmp_path / "run")]
    hosts = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [h.communicate(timeout=300) for h in hosts]
    assert [h.returncode for h in hosts] == [0, 0], [err[-2000:] for _, err in outs]
    summaries = [line for out, _ in outs for line in out.splitlines() if line.startswith("{")]
    assert len(summaries) == 1 and json.loads(summaries[0])["status"] == "completed"
    _, meta = load_run(tmp_path / "run")
    assert meta["run"]["world_size"] == 2 and meta["run"]["effective_batch_size"] == 32
