"""Why a pretrained body helps: its features already separate the classes.

The body's output (the penultimate layer, what the head reads) of every test image, for the
body a run started from and for the run's own body, each summed up by one number: how often
an image's 5 nearest neighbours in that space carry its class (5-NN accuracy, 5-fold
stratified cross-validation over the test features alone, Euclidean distance on the features
as they are). scikit-learn draws the 2-D pictures: PCA (linear, fast) and t-SNE (neighbours
kept, distances between clusters not).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from ..runs.checkpoints import load_run
from ..errors import verify_choice
from ..events import StopToken
from ..training.feature_cache import compute_features
from ..models import TransferNet, create_backbone
from ..runs.folder import source_folder

NEIGHBOURS, FOLDS = 5, 5
PROJECTIONS = ("pca", "tsne")
# Points drawn (and given to t-SNE, which grows faster than linearly with them): a seeded sample
# this big takes t-SNE a few seconds on a CPU and keeps the chart responsive.
MAX_POINTS = 1000


@dataclass
class FeatureView:
    """One body's features of the test images, and how well they separate the classes."""

    title: str  # which body: "before: lenet5-mnist (the source)" / "after: this run"
    features: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) true classes
    knn_accuracy: float

    def to_dict(self) -> dict:
        return {"title": self.title, "knn_accuracy": self.knn_accuracy, "dim": int(self.features.shape[1]),
                "size": int(len(self.labels))}


def knn_accuracy(features: np.ndarray, labels: np.ndarray, *, k: int = NEIGHBOURS, seed: int = 0) -> float:
    """k-NN accuracy, cross-validated over (features, labels) in stratified folds.

    A class with fewer images than folds limits the folds (at least 2); fewer than 2 per class: nan.
    """
    _, counts = np.unique(labels, return_counts=True)
    folds = min(FOLDS, int(counts.min()) if len(counts) else 0)
    if folds < 2 or len(counts) < 2:
        return float("nan")
    knn = KNeighborsClassifier(n_neighbors=min(k, (folds - 1) * len(labels) // folds))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with threadpool_limits(1):  # as for t-SNE (see project): threads only slow it on a busy machine
        return float(cross_val_score(knn, features, labels, cv=cv).mean())


def project(features: np.ndarray, method: str = "pca", *, seed: int = 0,
            max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """2-D coordinates of the features. Returns ``(indices, coords)`` of at most ``max_points``
    images (a seeded sample, indices sorted): t-SNE sees only those; PCA is fitted on all."""
    verify_choice(method, "projection", PROJECTIONS)
    n = len(features)
    idx = np.arange(n)
    if n > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    x = features.astype(np.float64)
    if x.shape[1] < 2 or n < 3:  # nothing to project: lay the points on a line
        return idx, np.c_[x[idx, :1], np.zeros(len(idx))].astype(np.float32)
    # One thread: t-SNE's OpenMP and BLAS threads spin against each other on a busy machine (1000
    # points took 67 s with the default threads on a loaded 2-core box, 6 s with one).
    with threadpool_limits(1):
        if method == "pca":
            coords = PCA(2, random_state=seed).fit(x).transform(x[idx])
        else:
            perplexity = float(min(30, max(2, (len(idx) - 1) / 3)))
            coords = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x[idx])
    return idx, coords.astype(np.float32)


def starting_body(weights: str, model: TransferNet) -> tuple[TransferNet | None, str]:
    """The model whose body ``model`` (a run with RunConfig ``weights``) started from, and a line saying which.

    A saved run as weights: that run, read from its folder (or the bundled run of that name).
    ImageNet: the backbone with its ImageNet weights. From scratch: None, and why.
    """
    weights = str(weights or "none")
    if weights == "none":
        return None, "Trained from scratch: there was no body before this run to compare with."
    if weights == "imagenet":
        source = create_backbone(model.backbone, weights="imagenet", num_classes=model.num_classes,
                                 image_size=model.spec.size)
        return source, f"before: {model.backbone}, ImageNet weights"
    folder = source_folder(weights)
    if folder is None:
        return None, f"Its source run {Path(weights).name!r} is no longer on disk: only this run's features are shown."
    source, _ = load_run(folder)
    return source, f"before: {folder.name} (the source model)"


def features_of(model: TransferNet, images: torch.Tensor, *, batch_size: int = 256) -> np.ndarray:
    """Body features of uint8 ``images`` on the CPU, float32 (N, D)."""
    out = compute_features(model.cpu(), images, torch.device("cpu"), batch_size=batch_size, amp=None,
                           stop=StopToken())
    return out.numpy()


@dataclass
class FeatureSpace:
    """A run's test features before (its starting body; None without one) and after training."""

    before: FeatureView | None
    after: FeatureView
    note: str = ""  # why there is no "before", when there is none

    def to_dict(self) -> dict:
        """The CLI's ``features --json``."""
        return {"before": self.before.to_dict() if self.before else None, "after": self.after.to_dict(),
                **({"note": self.note} if self.note else {})}


def feature_space(model: TransferNet, weights: str, images: torch.Tensor, labels: torch.Tensor, *,
                  seed: int = 0) -> FeatureSpace:
    """The features of a run's ``model`` on ``images`` (its test split), and of the body it started
    from (its RunConfig ``weights``: a saved run, imagenet or none)."""
    y = labels.cpu().numpy()
    after = features_of(model, images)
    after_view = FeatureView("after: this run", after, y, knn_accuracy(after, y, seed=seed))
    source, title = starting_body(weights, model)
    if source is None:
        return FeatureSpace(None, after_view, title)
    before = features_of(source, images)
    return FeatureSpace(FeatureView(title, before, y, knn_accuracy(before, y, seed=seed)), after_view)


def panels(space: FeatureSpace, method: str = "pca", *, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(title with its 5-NN accuracy, image indices, 2-D coordinates) per view, before first."""
    out, last = [], None
    for view in (space.before, space.after):
        if view is not None:
            # A frozen body's features are the source's: one projection (t-SNE takes seconds) serves both.
            if last is None or not np.array_equal(last[0], view.features):
                last = (view.features, *project(view.features, method, seed=seed))
            out.append((f"{view.title}<br>{NEIGHBOURS}-NN accuracy {view.knn_accuracy:.1%}", last[1], last[2]))
    return out
