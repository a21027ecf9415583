"""Fine-tuning that does not forget: L2-SP, head L2 and LwF as objective terms, and forgetting measured."""
from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import BUNDLED, quick
from tlcore.config import RunConfig
from tlcore.training.objective import Objective
from tlcore.training.regularizers import L2SP, HeadL2, LwF, last_linear
from tlcore.training.source_task import FROZEN_BODY, NO_SOURCE
from tlcore.training.train import train


def toy(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)


def lwf_on(student: nn.Sequential, teacher: nn.Sequential, weight: float = 1.0, t: float = 2.0) -> LwF:
    """LwF reading the student's features (the input of its last layer) through the teacher's head."""
    term = LwF(weight, t, source=teacher, source_head=teacher[-1], head=student[-1])
    term.open()
    return term


def test_l2sp_is_zero_at_the_start_and_its_gradient_points_back_to_it():
    model = toy()
    term = L2SP(1.0, model.parameters())
    x, y = batch()
    assert term(model(x), y, x).item() == 0.0
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    moved = [p.detach().clone() for p in model.parameters()]
    value = term(model(x), y, x)
    value.backward()
    for p, p0, w in zip(model.parameters(), term.start, moved):
        assert torch.allclose(p.grad, w - p0, atol=1e-5)  # d/dw 1/2 ||w - w0||^2 = w - w0: descent goes back
    assert value.item() == pytest.approx(0.5 * sum(((w - p0) ** 2).sum().item() for w, p0 in zip(moved, term.start)),
                                         rel=1e-5)


def test_head_l2_pulls_the_head_towards_zero():
    head = nn.Linear(4, 3)
    term = HeadL2(1.0, head.parameters())
    term(None, None, None).backward()
    assert torch.allclose(head.weight.grad, head.weight.detach()) and torch.allclose(head.bias.grad, head.bias.detach())
    with torch.no_grad():
        head.weight.zero_(), head.bias.zero_()
    assert term(torch.zeros(1), None, None).item() == 0.0


def test_lwf_is_exactly_zero_while_the_student_is_the_teacher_and_pulls_it_back_after():
    teacher = toy()
    student = copy.deepcopy(teacher)
    term = lwf_on(student, teacher)
    x, y = batch()
    assert term(student(x), y, x).item() == 0.0
    with torch.no_grad():
        student[0].weight.add_(0.5 * torch.randn_like(student[0].weight))  # the body drifts
    opt = torch.optim.SGD(student[0].parameters(), lr=1.0)
    before = term(student(x), y, x)
    assert before.item() > 0
    for _ in range(50):  # descending the term alone brings the student's source outputs back to the teacher's
        opt.zero_grad()
        term(student(x), y, x).backward()
        opt.step()
    after = term(student(x), y, x).item()
    assert after < before.item() / 3
    assert all(p.grad is None for p in term.teacher.parameters())  # the teacher never learns


def test_lwf_reads_the_features_the_head_receives_and_lets_go_when_closed():
    teacher, student = toy(), toy(seed=3)
    term = lwf_on(student, teacher)
    x, _ = batch()
    student(x)
    assert torch.equal(term.features, student[1](student[0](x)))
    term.close()
    assert not student[-1]._forward_pre_hooks and term.features is None


@pytest.mark.parametrize("kind", ["l2sp", "head_l2", "lwf"])
def test_a_term_of_weight_zero_is_not_computed_and_changes_nothing(kind):
    model, teacher = toy(), toy(seed=5)
    term = {"l2sp": lambda: L2SP(0.0, model.parameters()), "head_l2": lambda: HeadL2(0.0, model[-1].parameters()),
            "lwf": lambda: lwf_on(model, teacher, weight=0.0)}[kind]()
    x, y = batch()
    logits = model(x)
    plain = Objective(0.1)(logits, y, x)
    assert Objective(0.1, terms=[term]).terms == [] and torch.equal(Objective(0.1, terms=[term])(logits, y, x), plain)


def test_the_head_is_a_transfernets_head_or_the_last_linear():
    from torchvision.models import vgg11

    from tlcore.models import create_backbone

    with torch.device("meta"):  # its structure is enough; initialising VGG-11's weights took 3-4 s
        vgg = vgg11()
    mlp, net = toy(), create_backbone("lenet5", num_classes=3)
    assert last_linear(vgg) is vgg.classifier[6] and last_linear(mlp) is mlp[-1] and last_linear(net) is net.head
    with pytest.raises(ValueError, match="no nn.Linear"):
        last_linear(nn.Conv2d(1, 1, 1))


def from_bundled(**kw) -> RunConfig:
    """conftest's quick run, fine-tuning the whole bundled MNIST LeNet-5."""
    return quick(**{"weights": str(BUNDLED), "preset": "full", "lr": 0.05, "body_lr_mult": 1.0, **kw})


def test_the_settings_survive_saving_and_loading_a_run(digits, tmp_path):
    cfg = from_bundled(l2sp=0.05, head_l2=0.001, lwf_weight=0.5, lwf_temperature=3.0)
    r = train(cfg, data=digits, out=tmp_path / "run")
    saved = RunConfig.from_saved(json.loads((tmp_path / "run" / "config.json").read_text())["run"])
    assert (saved.l2sp, saved.head_l2, saved.lwf_weight, saved.lwf_temperature) == (0.05, 0.001, 0.5, 3.0)
    assert r.notes == []


def test_a_run_from_a_saved_run_measures_what_it_forgot(digits):
    """The bundled MNIST model's replay sample, before and after: read through its own head."""
    r = train(from_bundled(lr=0.1, epochs=3), data=digits)
    assert r.source_accuracy_before > 0.98  # the bundled model on its own task
    assert r.source_accuracy_after < r.source_accuracy_before  # fine-tuning the whole body costs some of it
    s = r.summary()
    assert (s["source_accuracy_before"], s["source_accuracy_after"]) == (r.source_accuracy_before, r.source_accuracy_after)


@pytest.mark.slow  # three fine-tunings
def test_keeping_terms_keep_more_of_the_source_than_plain_fine_tuning(digits):
    plain, l2sp, lwf = (train(from_bundled(lr=0.1, epochs=3, **kw), data=digits)
                        for kw in ({}, {"l2sp": 0.1}, {"lwf_weight": 1.0}))
    assert l2sp.source_accuracy_after > plain.source_accuracy_after
    assert lwf.source_accuracy_after > plain.source_accuracy_after


@pytest.mark.parametrize("cfg,note", [
    ({"weights": "none", "lwf_weight": 1.0}, NO_SOURCE),
    ({"preset": "linear-probe", "l2sp": 0.1}, FROZEN_BODY),
])
def test_a_term_that_cannot_act_says_so(digits, cfg, note):
    r = train(from_bundled(**cfg), data=digits)
    assert r.notes == [note] and r.summary()["notes"] == [note]


def test_an_image_from_the_teacher_is_distilled_at_its_temperature():
    """T^2 * KL(teacher || student) at temperature T, the student read by the teacher's own head."""
    teacher, student = toy(), toy(seed=7)
    term = lwf_on(student, teacher, t=3.0)
    x, y = batch()
    got = term(student(x), y, x)
    p = F.softmax(teacher(x) / 3, 1)
    q = F.log_softmax(teacher[-1](student[1](student[0](x))) / 3, 1)
    want = (p * (p.log() - q)).sum(1).mean() * 9
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
