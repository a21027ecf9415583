"""How many CPU threads a run's steps use: one for steps too small to share (tlcore.device)."""
from __future__ import annotations

import sys

import pytest
import torch

from tlcore.device import SMALL_STEP_MACS, cpu_threads, macs_per_input, step_threads
from tlcore.events import Callback
from tlcore.models import create_backbone
from tlcore.training.train import train

from conftest import quick

CPU = torch.device("cpu")


def test_multiply_adds_are_counted_as_published_and_leave_the_model_as_it_was():
    """ResNet-18 at 224 px: 1.81 G multiply-adds (torchvision's table, 1000 classes); counting
    runs in eval mode and changes neither BatchNorm's statistics nor the training flag."""
    torch.manual_seed(0)
    net = create_backbone("resnet18", weights="none", num_classes=1000).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    macs = macs_per_input(net, torch.randn(2, 3, 224, 224))
    assert 1.80e9 < macs < 1.83e9
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_small_steps_take_one_thread_and_large_ones_are_left_alone():
    lenet = create_backbone("lenet5", weights="none", num_classes=10)
    resnet = create_backbone("resnet18", weights="none", num_classes=10)
    with cpu_threads(2):
        assert macs_per_input(lenet, torch.zeros(1, 1, 28, 28)) < SMALL_STEP_MACS
        assert step_threads(lenet, torch.zeros(1, 1, 28, 28), CPU) == 1
        assert step_threads(lenet.head, torch.zeros(1, lenet.num_features), CPU) == 1
        assert step_threads(resnet, torch.zeros(1, 3, 32, 32), CPU) is None
    with cpu_threads(1):  # already one: nothing to change
        assert step_threads(lenet, torch.zeros(1, 1, 28, 28), CPU) is None


def test_a_lenet_run_steps_on_one_thread_and_gives_the_threads_back(digits):
    seen = []

    class Threads(Callback):
        def on_step(self, trainer, event):
            seen.append(torch.get_num_threads())

    with cpu_threads(2):
        train(quick(epochs=1), data=digits, callbacks=[Threads()])
        assert torch.get_num_threads() == 2
    assert seen and set(seen) == {1}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_malloc_keeps_freed_memory_unless_told_not_to(monkeypatch):
    """Tuned on import (tlcore/__init__.py: big tensors from the heap, reused batch after batch);
    TLCORE_MALLOC=default or the user's own MALLOC_MMAP_THRESHOLD_ leaves malloc alone."""
    import tlcore

    assert tlcore.MALLOC_TUNED is True and tlcore.keep_freed_memory() is True
    monkeypatch.setenv("TLCORE_MALLOC", "default")
    assert tlcore.keep_freed_memory() is False
    monkeypatch.delenv("TLCORE_MALLOC")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert tlcore.keep_freed_memory() is False
