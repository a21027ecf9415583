"""TransferNet: every backbone wears the same face (timm's), which is what transfer needs.

A network is a ``body`` that maps images to one feature vector per image and a linear
``head`` that maps features to classes. The body's parameters are partitioned into named
layer groups (stem, stages..., in input-to-output order); the head is the last group. Head
swapping, freezing, feature caching and checkpoints all work through this one shape.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..preprocess import InputSpec

HEAD = "head"


def body_frozen(frozen, group_names, *, train_bn: bool = False) -> bool:
    """Nothing in the body learns (a fixed feature extractor): every group but the head is in
    ``frozen``, and BatchNorm in frozen groups does not train (``train_bn``). The one answer,
    for a model (:attr:`TransferNet.body_frozen`) as for a choice not yet applied to one."""
    body = [g for g in group_names if g != HEAD]
    return not train_bn and bool(body) and set(body) <= set(frozen)


@dataclass(frozen=True)
class BodySpec:
    """What a backbone builder returns: the body and how to describe it."""

    body: nn.Module  # images (N, C, S, S) -> features (N, num_features)
    num_features: int
    groups: list[tuple[str, list[str]]]  # (group name, module or parameter name prefixes in body)
    spec: InputSpec  # input the weights expect
    weights: str  # where the weights came from, for the record


@dataclass(frozen=True)
class GroupInfo:
    name: str
    params: int
    trainable: int


def _matches(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class TransferNet(nn.Module):
    """A pretrained (or random) body plus a fresh linear head, with named layer groups."""

    def __init__(self, built: BodySpec, num_classes: int, *, backbone: str):
        super().__init__()
        self.body = built.body
        self.backbone = backbone
        self.weights = built.weights
        self.spec = built.spec
        self.num_features = built.num_features
        self.head = self._new_head(num_classes)
        self.classes: list[str] | None = None  # class names, once trained or loaded
        self.source_run: str | None = None  # the saved run whose body this one started from
        self._groups: dict[str, list[str]] = {}
        unassigned = dict(self.body.named_parameters())
        for gname, prefixes in built.groups:
            names = [n for n in unassigned if _matches(n, prefixes)]
            self._groups[gname] = ["body." + n for n in names]
            for n in names:
                del unassigned[n]
        # Every body parameter belongs to exactly one group, or freezing would silently miss it.
        assert not unassigned, f"{backbone}: parameters outside any group: {list(unassigned)[:5]}"
        assert HEAD not in self._groups
        self._groups[HEAD] = ["head." + n for n, _ in self.head.named_parameters()]
        self.frozen: frozenset[str] = frozenset()  # the groups that do not train (set by tlcore.models.freeze)
        self.train_bn = False
        self._frozen_bn: list[nn.Module] = []

    # -- the timm face ---------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """A new head, initialised as a new model's is (the group stays trainable)."""
        dev = self.head.weight.device
        self.head = self._new_head(num_classes).to(dev)

    def _new_head(self, num_classes: int) -> nn.Linear:
        head = nn.Linear(self.num_features, num_classes)
        if self.weights != "none":
            # On a pretrained body the new head starts at zero, as logistic regression does:
            # every class starts equally likely, the first steps fit the head to the features
            # rather than sending a random head's gradients into the body, and no seed's random
            # head has to be unlearned. A linear probe on small photo sets scores ~3 points more
            # (benchmarks/linear_probe.py). From scratch, the default init stays.
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        return head

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    # -- layer groups ----------------------------------------------------------------------
    def group_names(self) -> list[str]:
        return list(self._groups)

    def body_group_names(self) -> list[str]:
        """Every group but the head, in order (the input side first)."""
        return [g for g in self._groups if g != HEAD]

    def group_parameters(self, name: str) -> list[tuple[str, nn.Parameter]]:
        params = dict(self.named_parameters())
        return [(n, params[n]) for n in self._groups[name]]

    def layer_groups(self) -> list[GroupInfo]:
        """Each group's parameter count and how many of them will train, in order."""
        out = []
        for g in self._groups:
            ps = [p for _, p in self.group_parameters(g)]
            out.append(GroupInfo(g, sum(p.numel() for p in ps), sum(p.numel() for p in ps if p.requires_grad)))
        return out

    def count_parameters(self) -> tuple[int, int]:
        """(trainable, total) parameter counts, exact."""
        ps = list(self.parameters())
        return sum(p.numel() for p in ps if p.requires_grad), sum(p.numel() for p in ps)

    def bn_modules(self, group: str) -> list[nn.Module]:
        """BatchNorm layers whose affine parameters belong to ``group``."""
        names = set(self._groups[group])
        return [m for n, m in self.named_modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and f"{n}.weight" in names]

    @property
    def body_frozen(self) -> bool:
        """Nothing in the body learns: it is a fixed feature extractor."""
        return body_frozen(self.frozen, self._groups, train_bn=self.train_bn)

    def train(self, mode: bool = True):
        super().train(mode)
        # Frozen BatchNorm keeps the running statistics it was pretrained with: in train mode
        # it would re-estimate them from the new data and the frozen features would drift.
        for m in self._frozen_bn:
            m.eval()
        if mode and self.body_frozen:
            self.body.eval()  # a fixed extractor: no dropout either, so cached features are exact
        return self
