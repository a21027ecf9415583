"""Pseudo-labels for the images nobody labelled, from a frozen body's cached features.

The tutorial's semi-supervised step ("a small number of target samples are labelled, and the
rest are learned by the model directly"), done the way a CPU affords: on the features a linear
probe already has, not by training the body (FixMatch needs ~10^6 steps). Two methods:

- ``label-spreading``: labels spread over a k-nearest-neighbour graph of the features (Zhou et
  al. 2004; Iscen et al., CVPR 2019 used it for deep features), scikit-learn's LabelSpreading;
- ``self-training``: a logistic regression on the labelled features labels the pool, keeps what it
  is sure of (confidence >= the threshold; 0.7, as scikit-learn's own example finds best), refits
  with those, for a few rounds, taking the same number of every class each round.

Both keep the selection class-balanced: no class takes more than its even share of the pool, so
one class a weak body favours cannot swallow the rest. What trains on the labels is balanced too
(:func:`balanced`): a class the pool gave few labels has its images repeated up to the largest
class's count. Without it, digits at one image per class (10 seeds, fp32) gained 0.0 points on
average, one seed losing 22.8 (classes 0, 6 and 9 got 0, 1 and 3 of 772 labels, and the head
learnt to answer them rarely); with it, +3.0 points on average, the worst seed -1.4. The true labels of the pool, when known,
are used only afterwards, to say how many pseudo-labels are right (:meth:`PseudoLabels.accuracy`).

A run (``--semi-supervised``) labels its pool this way from the source model's features before it
trains, then trains on its labelled images and the ones labelled for it (:func:`with_pseudo_labels`):
with a frozen body that is a probe on more rows; with a trainable one, pseudo-label fine-tuning
with the run's own augmentation. (FixMatch's weak/strong pairs relabel every step and need about
a million of them: out of a CPU's reach, see the README.)
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..config import SEMI_METHODS, RunConfig
from ..data import ImageData, Split
from ..data.stream import streamed
from ..data.base import UNKNOWN
from ..device import autocast_dtype, pick_device
from ..errors import TLCoreError, verify_choice
from ..events import StopToken
from ..models import create_backbone, freeze
from .feature_cache import compute_features

STRATEGY = "semi-supervised"  # its name among a curve's strategies (tlcore.studies.curve)
METHODS = SEMI_METHODS
THRESHOLD = 0.7  # the least confidence a pseudo-label is kept with
NEIGHBOURS = 10  # of the k-NN graph labels spread over
ALPHA = 0.2  # how much of its label a point takes from its neighbours at each spreading step
ROUNDS = 3  # of self-training


@dataclass
class PseudoLabels:
    """Labels given to part of an unlabelled pool."""

    method: str
    index: torch.Tensor  # the rows that got a label (int64): positions in the pool given, or rows of its owner's
    labels: torch.Tensor  # their labels (int64)
    pool: int  # images in the pool

    @property
    def used(self) -> int:
        return len(self.index)

    def accuracy(self, true: torch.Tensor | None) -> float | None:
        """Share of the pseudo-labels that are right, given the pool's true labels (None: unknown)."""
        if true is None or not self.used:
            return None
        return float((true[self.index] == self.labels).float().mean())


def pseudo_label(method: str, labelled: torch.Tensor, labels: torch.Tensor, pool: torch.Tensor, n_classes: int, *,
                 threshold: float = THRESHOLD, seed: int = 0) -> PseudoLabels:
    """Pseudo-labels for ``pool`` (features, N x D) from ``labelled`` features and their ``labels``."""
    verify_choice(method, "semi-supervised method", METHODS)
    xl, xu = _normalized(labelled), _normalized(pool)
    yl = labels.cpu().numpy()
    if not len(xu):
        return PseudoLabels(method, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 0)
    if method == "label-spreading":
        probs = _spread(xl, yl, xu, n_classes)
        keep = _balanced(probs, threshold, np.full(n_classes, _share(len(xu), n_classes)), np.ones(len(xu), bool))
        given = probs.argmax(1)
    else:
        keep, given = _self_train(xl, yl, xu, n_classes, threshold, seed)
    index = torch.from_numpy(np.flatnonzero(keep)).long()
    return PseudoLabels(method, index, torch.from_numpy(given[keep]).long(), len(xu))


def balanced(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Rows of ``labels`` to train on: all of them, then each class's rows drawn again (seeded, with
    replacement) until every class has as many as the largest."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.bincount(labels)
    extra = []
    for c in torch.nonzero(counts).flatten().tolist():
        rows = torch.nonzero(labels == c).flatten()
        extra.append(rows[torch.randint(len(rows), (int(counts.max()) - len(rows),), generator=g)])
    return torch.cat([torch.arange(len(labels)), *extra])


def _normalized(x: torch.Tensor) -> np.ndarray:
    """Unit-length rows: cosine neighbours, which suit a network's features better than raw distances."""
    x = x.float().cpu()
    return torch.nn.functional.normalize(x, dim=1).numpy().astype(np.float64)


def _share(pool: int, n_classes: int) -> int:
    return math.ceil(pool / n_classes)


def _spread(xl: np.ndarray, yl: np.ndarray, xu: np.ndarray, n_classes: int) -> np.ndarray:
    """Each pool image's label distribution after spreading (rows sum to 1; classes 0..n-1)."""
    from sklearn.semi_supervised import LabelSpreading

    x = np.concatenate([xl, xu])
    y = np.concatenate([yl, np.full(len(xu), -1)])
    k = min(NEIGHBOURS, len(x) - 1)
    model = LabelSpreading(kernel="knn", n_neighbors=k, alpha=ALPHA, max_iter=100).fit(x, y)
    probs = np.zeros((len(xu), n_classes))
    probs[:, model.classes_[model.classes_ >= 0]] = np.nan_to_num(model.label_distributions_[len(xl):])
    return probs


def _balanced(probs: np.ndarray, threshold: float, room: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Rows kept among ``eligible``: confidence >= ``threshold``, the most confident first, at most
    ``room[c]`` of each class c."""
    keep = np.zeros(len(probs), bool)
    conf, pred = probs.max(1), probs.argmax(1)
    for c in range(probs.shape[1]):
        rows = np.flatnonzero((pred == c) & (conf >= threshold) & eligible)
        keep[rows[np.argsort(-conf[rows], kind="stable")][:max(int(room[c]), 0)]] = True
    return keep


def _equal_room(probs: np.ndarray, threshold: float, eligible: np.ndarray, share: int, had: np.ndarray) -> np.ndarray:
    """How many more each class may take this round: the same number for every class, what the class
    with the fewest sure predictions offers (up to this round's part of the share). A logistic
    regression on one image a class can be sure of a single class only, and its labels then taught
    the next round that class alone (digits, seed 0: 129 labels, all "6")."""
    conf, pred = probs.max(1), probs.argmax(1)
    sure = np.bincount(pred[(conf >= threshold) & eligible], minlength=probs.shape[1])
    return np.full(probs.shape[1], max(0, min(int(sure.min()), share - int(had.max()))))


def _self_train(xl, yl, xu, n_classes: int, threshold: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows kept, the label each was given when taken): a logistic regression refitted on what it labelled."""
    from sklearn.linear_model import LogisticRegression

    taken, fixed = np.zeros(len(xu), bool), np.zeros(len(xu), np.int64)
    cap = _share(len(xu), n_classes)
    for r in range(ROUNDS):
        x = np.concatenate([xl, xu[taken]])
        y = np.concatenate([yl, fixed[taken]])
        clf = LogisticRegression(max_iter=1000, C=10.0, random_state=seed).fit(x, y)
        probs = np.zeros((len(xu), n_classes))
        probs[:, clf.classes_] = clf.predict_proba(xu)
        new = _balanced(probs, threshold, _equal_room(probs, threshold, ~taken, math.ceil(cap * (r + 1) / ROUNDS),
                                                      np.bincount(fixed[taken], minlength=n_classes)), ~taken)
        fixed[new] = probs[new].argmax(1)
        taken |= new
    return taken, fixed


def with_pseudo_labels(data: ImageData, cfg: RunConfig, stop: StopToken, progress=None) -> ImageData:
    """``data`` whose training split also holds the unlabelled images ``cfg.semi_supervised`` labelled
    from the source body's features, under those labels; ``data.pseudo`` says how many and, where the
    pool's labels were hidden, how many are right. ``data`` itself if a stop came first."""
    pool = data.unlabelled
    if pool is None or not len(pool):
        raise TLCoreError("Semi-supervised needs images without labels: an unlabelled/ folder beside the class "
                          "folders, images added as unlabelled (the Data tab; --unlabelled PATH), or the labels "
                          "hidden beyond K per class (--labelled-per-class K).")
    if streamed(pool.images) or streamed(data.train.images):
        raise TLCoreError("Semi-supervised needs the images in memory; this folder is streamed from its files.")
    t = time.perf_counter()
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    body = freeze(create_backbone(cfg.backbone, weights=cfg.weights, num_classes=len(data.classes),
                                  image_size=cfg.image_size), preset="linear-probe").to(device)
    feats = []
    for i, images in enumerate((data.train.images, pool.images)):
        f = compute_features(body, images, device, amp=autocast_dtype(device, cfg.precision),
                             stop=stop, progress=progress and (lambda p, i=i: progress((i + p) / 2)))
        if f is None:
            return data
        feats.append(f)
    p = pseudo_label(cfg.semi_supervised, feats[0], data.train.labels, feats[1], len(data.classes), seed=cfg.seed)
    added = Split(pool.images[p.index], p.labels)  # the pool's own labels are not read here
    train = Split(torch.cat([data.train.images, added.images]), torch.cat([data.train.labels, added.labels]))
    train = train.subset(balanced(train.labels, cfg.seed))
    summary = {"method": p.method, "pool": p.pool, "used": p.used, "accuracy": hidden_accuracy(p, pool.labels),
               "labelled": len(data.train), "per_class": len(train) // len(data.classes),
               "seconds": round(time.perf_counter() - t, 2)}
    return dataclasses.replace(data, train=train, pseudo=summary)


def hidden_accuracy(p: PseudoLabels, truth: torch.Tensor) -> float | None:
    """The share of the pseudo-labels given to images whose label was hidden that are right (None: none were)."""
    known = truth[p.index] != UNKNOWN
    if not bool(known.any()):
        return None
    return float((truth[p.index][known] == p.labels[known]).float().mean())


def pseudo_sentence(pseudo: dict) -> str:
    """What labelling the pool did, from its own numbers."""
    said = (f"Semi-supervised ({pseudo['method']}): {pseudo['used']:,} of {pseudo['pool']:,} unlabelled images "
            f"were labelled confidently enough to train on, beside {pseudo['labelled']:,} labelled ones (every "
            f"class then evened out to {pseudo['per_class']:,} images by repeating its own)")
    if pseudo["accuracy"] is None:
        return said + " (nobody knows their labels, so how many are right is not measured)."
    return said + f"; {pseudo['accuracy']:.0%} of those labels are right (their hidden labels, read only to score)."
