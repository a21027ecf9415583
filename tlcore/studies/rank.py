"""Which source to start from, before training: transferability scores from one feature pass.

For each candidate (a backbone and its weights: ImageNet, a saved run such as the bundled MNIST
model, or random weights as the floor), the frozen body's features of a stratified sample of the
training split, then three scores of how well those features fit the labels:

- **LogME** (You et al., ICML 2021): the log marginal evidence of a Bayesian linear model from the
  features to each class's one-hot labels, maximised over its two precisions by a fixed point after
  one eigendecomposition; per image, averaged over classes. Higher is better.
- **LEEP** (Nguyen et al., ICML 2020): how well the source's own head's predictions, mapped to the
  target labels through their empirical joint, predict them; only where the candidate has a source
  head with its classes (a saved run). Higher (closer to 0) is better.
- **5-NN accuracy** of the features, cross-validated (:func:`tlcore.insight.feature_space.knn_accuracy`):
  recent comparisons find a plain k-NN as good as any score.

None of them is reliable across datasets, so ``check=True`` also trains each candidate as a linear
probe (the curve's probe: same settings, cached features) and reports each score's Kendall tau with
the probes' test accuracies on this data.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..data import ImageData
from ..data.base import few_shot
from ..errors import TLCoreError
from ..events import StopToken
from ..insight.feature_space import knn_accuracy
from ..runs.checkpoints import source_body
from ..training.feature_cache import compute_features

PER_CLASS = 100  # training images per class the scores see (the feature pass dominates the time)
SCORES = ("logme", "leep", "knn_accuracy")


@dataclass
class Candidate:
    backbone: str
    weights: str
    logme: float | None = None
    leep: float | None = None
    knn_accuracy: float | None = None
    seconds: float = 0.0
    probe_accuracy: float | None = None  # with check: a linear probe's test accuracy


@dataclass
class Ranking:
    dataset: str
    images: int  # the sample the scores saw
    candidates: list[Candidate] = field(default_factory=list)  # best LogME first
    tau: dict[str, float | None] = field(default_factory=dict)  # with check: each score's Kendall tau vs the probes

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "images": self.images, "candidates": [asdict(c) for c in self.candidates],
                **({"kendall_tau": dict(self.tau)} if self.tau else {}), "sentence": self.sentence()}

    def sentence(self) -> str:
        """Who each score puts first and last, and (with check) how well each agreed with the probes."""
        said = []
        for score in SCORES:
            scored = [c for c in self.candidates if getattr(c, score) is not None]
            if len(scored) < 2:
                continue
            best = max(scored, key=lambda c: getattr(c, score))
            worst = min(scored, key=lambda c: getattr(c, score))
            said.append(f"{_NAMES[score]} puts {_name(best)} first and {_name(worst)} last")
        out = "; ".join(said) + "." if said else "Too few candidates to rank."
        if self.tau:
            probes = sorted(self.candidates, key=lambda c: -(c.probe_accuracy or 0))
            out += (f" Trained as linear probes, {_name(probes[0])} scored best ({probes[0].probe_accuracy:.1%}); "
                    "agreement with the probes' order (Kendall tau, 1 = the same order): "
                    + ", ".join(f"{_NAMES[s]} {t:+.2f}" for s, t in self.tau.items() if t is not None) + ".")
        return out


_NAMES = {"logme": "LogME", "leep": "LEEP", "knn_accuracy": "5-NN accuracy"}


def _name(c: Candidate) -> str:
    weights = c.weights if c.weights in ("none", "imagenet") else c.weights.rstrip("/").rsplit("/", 1)[-1]
    return f"{c.backbone} ({'random weights' if weights == 'none' else weights})"


def parse_candidates(text: str) -> list[tuple[str, str]]:
    """"efficientnet_lite0:imagenet,lenet5:assets/models/lenet5-mnist" -> [(backbone, weights), ...];
    the weights follow the last colon (timm:<name> backbones have one of their own)."""
    out = []
    for part in (p.strip() for p in str(text).split(",") if p.strip()):
        backbone, sep, weights = part.rpartition(":")
        if not sep or not backbone or not weights:
            raise TLCoreError(f"A candidate is BACKBONE:WEIGHTS (e.g. efficientnet_lite0:imagenet), got {part!r}.")
        out.append((backbone, weights))
    if len(out) < 2:
        raise TLCoreError(f"Ranking needs at least 2 candidates, got {len(out)}.")
    return out


def rank(data: ImageData, candidates: list[tuple[str, str]], *, per_class: int = PER_CLASS, check: bool = False,
         seed: int = 0, stop: StopToken | None = None, say: Callable[[str], None] = lambda line: None) -> Ranking:
    """Score every candidate on a stratified sample of ``data``'s training split; best LogME first."""
    stop = stop or StopToken()
    idx = few_shot(data.train.labels, per_class, seed)
    images, labels = data.train.images[idx], data.train.labels[idx].numpy()
    out = Ranking(data.name, len(idx))
    for backbone, weights in candidates:
        say(f"{backbone} ({weights}): features of {len(idx):,} images")
        torch.manual_seed(seed)  # random weights, the same on every call: the ranking repeats
        c = score(backbone, weights, images, labels, len(data.classes), stop)
        if check:
            c.probe_accuracy = _probe(data, backbone, weights, stop)
        out.candidates.append(c)
    out.candidates.sort(key=lambda c: -c.logme)
    if check:
        out.tau = {s: _tau([getattr(c, s) for c in out.candidates], [c.probe_accuracy for c in out.candidates])
                   for s in SCORES}
    return out


def score(backbone: str, weights: str, images: torch.Tensor, labels: np.ndarray, n_classes: int,
          stop: StopToken) -> Candidate:
    t = time.perf_counter()
    saved = weights not in ("none", "imagenet")  # a saved run keeps the head of its source task (for LEEP)
    model = source_body(backbone, weights, n_classes)
    feats = compute_features(model, images, torch.device("cpu"), batch_size=128, amp=None, stop=stop)
    if feats is None:
        raise TLCoreError("Stopped while ranking.")
    f = feats.numpy().astype(np.float64)
    c = Candidate(backbone, weights, logme=logme(f, labels), knn_accuracy=knn_accuracy(f, labels))
    if saved:
        with torch.no_grad():
            probs = model.head(feats).softmax(1).numpy().astype(np.float64)
        c.leep = leep(probs, labels)
    c.seconds = time.perf_counter() - t
    return c


def logme(f: np.ndarray, y: np.ndarray) -> float:
    """LogME of features ``f`` (N, D) for integer labels ``y``: the mean over classes of the
    per-image log evidence of a linear model with Gaussian prior (precision alpha) and noise
    (precision beta), both at their evidence maximum."""
    n, d = f.shape
    v, s, _ = np.linalg.svd(f.T @ f)  # the eigenpairs of F^T F: D of them, zeros included
    out = []
    for k in np.unique(y):
        t = (y == k).astype(np.float64)
        proj = v.T @ (f.T @ t)  # F^T t in the eigenbasis
        alpha, beta = 1.0, 1.0
        for _ in range(11):  # the paper's fixed point; it converges in a few steps
            lam = alpha / beta
            gamma = float((s / (s + lam)).sum())
            m = v @ (proj / (s + lam))  # the posterior mean
            alpha_de, beta_de = float(m @ m), float(((t - f @ m) ** 2).sum())
            alpha, beta = gamma / (alpha_de + 1e-5), (n - gamma) / (beta_de + 1e-5)
            if abs(alpha / beta - lam) / lam < 0.01:
                break
        evidence = (d / 2 * math.log(alpha) + n / 2 * math.log(beta) - 0.5 * float(np.log(alpha + beta * s).sum())
                    - beta / 2 * beta_de - alpha / 2 * alpha_de - n / 2 * math.log(2 * math.pi))
        out.append(evidence / n)
    return float(np.mean(out))


def leep(probs: np.ndarray, y: np.ndarray) -> float:
    """LEEP from the source head's probabilities (N, Z) and the target labels: the mean log of
    sum_z P(y | z) theta_z(x), with P(y | z) the empirical conditional over the sample."""
    n_classes = int(y.max()) + 1
    joint = np.zeros((n_classes, probs.shape[1]))
    for k in range(n_classes):
        joint[k] = probs[y == k].sum(0)
    joint /= len(y)
    conditional = joint / np.maximum(joint.sum(0, keepdims=True), 1e-12)  # P(y | z)
    return float(np.log(np.maximum((probs @ conditional.T)[np.arange(len(y)), y], 1e-12)).mean())


def _probe(data: ImageData, backbone: str, weights: str, stop: StopToken) -> float:
    """A linear probe's test accuracy: the curve's probe (suggested settings, cached features)."""
    from .compare import strategy_config
    from .curve import ProbeCache

    cfg = strategy_config("linear-probe", dataset=data.name, backbone=backbone, weights=weights, n_train=len(data.train))
    return ProbeCache(data, cfg, stop=stop).probe(cfg, None, stop).test.accuracy


def _tau(scores: list, truth: list) -> float | None:
    from scipy.stats import kendalltau

    pairs = [(a, b) for a, b in zip(scores, truth) if a is not None and b is not None and not math.isnan(a)]
    if len(pairs) < 2:
        return None
    return float(kendalltau(*zip(*pairs)).statistic)
