"""Bitwise fixtures of the training loop: seeded runs recorded from main before its restructure.

The loop was cut into pieces (issue #11) on the promise that no number moves. These cases were
recorded with the one-function loop of commit d37e362; ``test_loop_fixtures.py`` runs them with
today's code and wants the same bits: every weight, every history number, the test
probabilities.

Bits depend on the arithmetic as much as on the code: the same run differs in its last bits on
a CPU with AVX-512 or with two threads instead of one, and oneDNN picks its kernels by the
machine. So this script pins an arithmetic that any x86-64 CPU with AVX2 can reproduce before
torch loads: ATen's AVX2 kernels, MKL's conditional numerical reproducibility (AVX2, strict),
one thread, and oneDNN and NNPACK off (convolutions go through ATen's im2col and MKL). What
that leaves machine-dependent is measured by a canary (a few steps of raw PyTorch training
through the same kernels, no tlcore): the test compares bits only where the canary matches the
recording machine's.

    python tests/loop_fixtures.py record [CASE ...]   # writes tests/fixtures/loop/CASE.json
    python tests/loop_fixtures.py digest CASE         # prints this code's digest as JSON

MNIST comes from $TLCORE_DATA_DIR.
"""
from __future__ import annotations

import os

# Before torch is imported: these are read once, when its libraries load.
PINNED_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}
os.environ.update(PINNED_ENV)

import hashlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]
FIXTURES = HERE / "fixtures" / "loop"
BUNDLED = ROOT / "assets" / "models" / "lenet5-mnist"

torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False
torch.backends.nnpack.enabled = False

from tlcore.config import RunConfig  # noqa: E402
from tlcore.data import load_dataset  # noqa: E402
from tlcore.training.train import train  # noqa: E402

COMMON = dict(backbone="lenet5", precision="fp32", seed=0, optimizer="sgd", scheduler="onecycle")


def _small_zip(folder: Path) -> str:
    """Three classes of 40 PNGs (conftest's coloured squares), zipped: a tiny user upload."""
    from conftest import write_folder, zip_folder

    root = write_folder(folder / "squares", {"a": 40, "b": 40, "c": 40}, size=28)
    return str(zip_folder(root, folder / "squares.zip"))


def case_mnist(tmp: Path) -> dict:
    """LeNet-5 on MNIST, one epoch, augmented: the CLI's from-scratch recipe."""
    cfg = RunConfig(dataset="mnist", epochs=1, batch_size=128, lr=0.15, augment=True, **COMMON)
    return digest(train(cfg, data=load_dataset("mnist", seed=0)))


def case_probe(tmp: Path) -> dict:
    """A linear probe of the bundled MNIST body on a small zip: cached features, AdamW."""
    zip_path = _small_zip(tmp)
    cfg = RunConfig(dataset=zip_path, weights=str(BUNDLED), preset="linear-probe", augment=False, epochs=5,
                    batch_size=32, **{**COMMON, "optimizer": "adamw"}, lr=1e-3)
    r = train(cfg, data=load_dataset(zip_path, seed=0))
    assert r.history and r.resume is None
    return digest(r)


def case_budgeted(tmp: Path) -> dict:
    """ZeroGPU's path: four epochs in four budgeted calls, each resuming the paused state."""
    cfg = RunConfig(dataset="digits", epochs=4, batch_size=64, lr=0.1, augment=True, **COMMON)
    data = load_dataset("digits", seed=0)
    r, pauses = train(cfg, data=data, budget_s=0), []
    while r.status == "paused":
        pauses.append(r.resume.epochs_done)
        r = train(cfg, data=data, budget_s=0, resume=r.resume)
    return {**digest(r), "pauses": pauses}


CASES = {"lenet5-mnist-augment": case_mnist, "linear-probe-cached-zip": case_probe,
         "budgeted-paused-resumed": case_budgeted}


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def digest(r) -> dict:
    """Every number of a run that the loop decides, timing aside."""
    timing = {"images_per_second", "seconds", "eta_seconds"}
    return {
        "status": str(r.status),
        "best_epoch": r.best_epoch,
        "history": [{k: v for k, v in vars(e).items() if k not in timing} for e in r.history],
        "weights": {k: _sha(v) for k, v in r.model.state_dict().items()},
        "test_accuracy": r.test.accuracy,
        "test_probs": _sha(torch.from_numpy(r.test.probs)),
    }


def canary() -> str:
    """Raw PyTorch, no tlcore: a few augmented LeNet-like steps with SGD, then AdamW, through the
    kernels the cases use. Machines that agree on this agree on the cases' arithmetic."""
    torch.manual_seed(0)  # the layers' initial weights
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 28, 28), generator=g, dtype=torch.uint8).float().div(255)
    y = torch.randint(0, 10, (64,), generator=g)
    theta = torch.eye(2, 3).repeat(64, 1, 1) + 0.1 * torch.rand(64, 2, 3, generator=g)
    x = F.grid_sample(x, F.affine_grid(theta, [64, 1, 28, 28], align_corners=False), align_corners=False)
    x = x.contiguous(memory_format=torch.channels_last)
    conv1, conv2 = torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.Conv2d(6, 16, 5)
    fc = torch.nn.Linear(16 * 5 * 5, 10)
    params = [*conv1.parameters(), *conv2.parameters(), *fc.parameters()]
    h = hashlib.sha256()
    for opt in (torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, fused=True),
                torch.optim.AdamW(params, lr=1e-3, fused=True)):
        for _ in range(3):
            a = F.max_pool2d(conv1(x), 2).relu()
            a = F.max_pool2d(conv2(a), 2).relu()
            logits = fc(a.flatten(1))
            loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            h.update(logits.softmax(1).detach().numpy().tobytes())
    for p in params:
        h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def run_case(name: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return CASES[name](Path(tmp))


def main(argv: list[str]) -> int:
    cmd, names = argv[0], argv[1:] or list(CASES)
    if cmd == "digest":
        print(json.dumps({"canary": canary(), "digest": run_case(names[0])}))
        return 0
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "tlcore"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip())
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in names:
        record = {"recorded_from": commit + (" (tlcore modified)" if dirty else ""), "case": CASES[name].__doc__,
                  "environment": {**PINNED_ENV, "threads": 1, "mkldnn": False, "nnpack": False,
                                  "torch": torch.__version__},
                  "canary": canary(), "digest": run_case(name)}
        (FIXTURES / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
