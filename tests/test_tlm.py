"""The tutorial's TransferLearningModel: its API, the engine underneath, and the tutorial's code as written."""
from __future__ import annotations

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from conftest import BUNDLED, ROOT
from tlcore import TransferLearningModel
from tlcore.training.batches import run_batches
from tlcore.config import RunConfig
from tlcore.data import SplitDataset
from tlcore.events import StopToken
from tlcore.models import create_backbone, freeze
from tlcore.training.optim import build_optimizer
from tlcore.training.train import train


def test_on_a_transfernet_it_trains_and_scores_exactly_as_train(digits):
    """Same settings and seed: the engine's loaders, optimizer and loss brought in from outside
    give the same history and the same test accuracy as train()."""
    cfg = RunConfig(dataset="digits", backbone="lenet5", epochs=3, batch_size=64, lr=0.05, scheduler="constant",
                    precision="fp32")
    r = train(cfg, data=digits)
    torch.manual_seed(cfg.seed)
    model = freeze(create_backbone("lenet5", num_classes=10), preset=cfg.preset)
    model = model.to(memory_format=torch.channels_last)
    b = run_batches(cfg, digits, model, torch.device("cpu"), None, stop=StopToken())
    opt, sched = build_optimizer(model, cfg, len(b.loader))
    tlm = TransferLearningModel(model, opt, nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), sched,
                                lambda1=0, lambda2=0, device="cpu", precision="fp32", verbose=False)
    history = tlm.fit(b.loader, b.val_loader, epochs=cfg.epochs)
    assert [e.val_loss for e in history] == [e.val_loss for e in r.history]
    assert tlm.eval(digits.test) == r.test.accuracy


class SmallNet(nn.Module):
    """Any module: no TransferNet face, a last nn.Linear as the head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.classifier = nn.Sequential(nn.Linear(128, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def loaders(digits, batch_size=32):
    train = DataLoader(SplitDataset(digits.train, size=8, channels=1, mean=(0.5,), std=(0.5,)), batch_size=batch_size,
                       shuffle=True, generator=torch.Generator().manual_seed(0))
    test = DataLoader(SplitDataset(digits.test, size=8, channels=1, mean=(0.5,), std=(0.5,)), batch_size=64)
    return train, test


def test_any_module_with_dataloaders_fits_evaluates_and_predicts(digits):
    torch.manual_seed(0)
    model = SmallNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    trainloader, testloader = loaders(digits)
    tlm = TransferLearningModel(model, opt, nn.CrossEntropyLoss(), sched, lambda1=0, lambda2=0, verbose=False)
    history = tlm.fit(trainloader, testloader, epochs=3)
    assert [e.lr for e in history] == pytest.approx([0.1, 0.05, 0.025])  # the scheduler steps per epoch
    acc = tlm.eval(testloader)
    assert isinstance(acc, float) and 0.5 < acc <= 1.0
    targets, predictions, probs = tlm.predict(testloader)
    assert all(isinstance(a, np.ndarray) for a in (targets, predictions, probs))
    assert probs.shape == (len(digits.test), 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (predictions == probs.argmax(1)).all() and float((predictions == targets).mean()) == acc
    assert probs[:, 1].shape == (len(digits.test),)  # the tutorial's ROC input


def test_fit_defaults_to_the_tutorials_25_epochs_and_works_without_validation(digits):
    torch.manual_seed(0)
    model = SmallNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    trainloader, _ = loaders(digits, batch_size=256)
    with pytest.warns(UserWarning, match="LwF is off"):  # the tutorial's default lambda2=1, and no source
        tlm = TransferLearningModel(model, opt, nn.CrossEntropyLoss(), None, verbose=False)
    history = tlm.fit(trainloader)
    assert len(history) == 25 and all(np.isnan(e.val_loss) for e in history)


def test_lwf_without_a_source_warns_how_to_turn_it_on(digits):
    model = SmallNet()
    with pytest.warns(UserWarning, match="Pass source="):
        TransferLearningModel(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), None,
                              lambda1=0, lambda2=1)


def test_a_transfernet_from_a_saved_run_brings_its_source_for_lwf(digits):
    model = freeze(create_backbone("lenet5", weights=str(BUNDLED), num_classes=10), preset="full")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "LwF is off" warning: the run it came from is the source
        tlm = TransferLearningModel(model, opt, nn.CrossEntropyLoss(), None, lambda1=0.1, lambda2=1, T=2)
    assert sorted(t.name for t in tlm.objective.terms) == ["l2sp", "lwf"]


def test_the_readme_runs_the_tutorials_code_as_written(cifar_zip):
    """The tutorial's snippet from the README, run in a fresh interpreter: fit, eval, predict,
    its confusion matrix and its ROC from pred[:, 1]."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## The tutorial's code.*?```python\n(.*?)```", readme, re.S).group(1)
    assert "tlm = TransferLearningModel(model, optimizer, criterion, scheduler, lambda1=1, lambda2=1, T=5)" in code
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"Accuracy: \d+\.\d+%", r.stdout) and "ROC AUC, class 1 against the rest: " in r.stdout
    assert r.stdout.count("Epoch ") == 25
