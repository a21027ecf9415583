"""How far the target lies from the source, before training: distances between their features.

One body (the source model, or any backbone with its weights) embeds a sample of the source's
training split and a sample of the target's test split; three distances between the two clouds:

- **Fréchet distance** (FID's): between Gaussians fitted to each cloud. It grows without bound, so
  it keeps ordering targets at both ends: the headline distance.
- **MMD** with a Gaussian kernel whose width is the median distance within the source sample
  (fixed per source, so targets compare): at most 2, and close to it once clouds stop overlapping.
- **Proxy A-distance** (Ben-David et al., 2007): 2 (1 - 2 err) for a linear classifier told to
  tell the clouds apart, cross-validated; 2 as soon as they separate: it saturates at the far end.

Each is anchored by the source against itself (its training sample against a sample of its own
test split: what sampling alone makes), and a target's *relative* distance is its Fréchet distance
over that anchor: 1 is as close as the source's own test split. Beside the features: how the
class names and their frequencies differ (total variation over the names: 0 alike, 1 no name in
common). With ``gain``, each target is also trained at a few images per class as a linear probe on
the source body and from scratch, and the difference (the transfer's gain) is set against the
distance.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..data import ImageData
from ..data.base import few_shot
from ..errors import TLCoreError
from ..events import StopToken
from ..runs.checkpoints import load_replay, source_body
from ..runs.folder import read_run_config
from ..training.feature_cache import compute_features

SAMPLE = 300  # images a side: every target's test split must have them (digits has 360)
DISTANCES = ("frechet", "mmd", "proxy_a")
SATURATES = {"frechet": None, "mmd": 2.0, "proxy_a": 2.0}  # each one's ceiling (None: unbounded)
GAIN_SHOTS = 5  # images per class for the gain: where a source body matters most


@dataclass
class Target:
    target: str
    frechet: float
    mmd: float
    proxy_a: float
    relative: float  # frechet over the anchor's: 1 = as close as the source's own test split
    classes: int
    shared_classes: int  # class names the source has too
    label_shift: float  # total variation between the two class-frequency distributions, over names
    probe_accuracy: float | None = None  # with gain: mean test accuracy, GAIN_SHOTS per class
    scratch_accuracy: float | None = None
    gain: float | None = None  # probe - scratch
    seconds: float = 0.0


@dataclass
class Shift:
    source: str
    backbone: str
    weights: str
    images: int  # a side
    anchor: dict[str, float]  # each distance between the source's train and test samples
    targets: list[Target] = field(default_factory=list)
    correlation: float | None = None  # with gain, 3+ targets: Spearman's rho of relative distance vs gain

    def to_dict(self) -> dict:
        return {"source": self.source, "backbone": self.backbone, "weights": self.weights, "images": self.images,
                "distance": "frechet", "saturates": {k: v for k, v in SATURATES.items()}, "anchor": self.anchor,
                "targets": [asdict(t) for t in self.targets], "gain_shots": GAIN_SHOTS,
                "spearman_distance_gain": self.correlation, "sentence": self.sentence()}

    def sentence(self) -> str:
        """Nearest and farthest target in the source's units; with gain, how the gain followed the distance."""
        if not self.targets:
            return "No target measured."
        ts = sorted(self.targets, key=lambda t: t.relative)
        said = [f"{t.target} is {t.relative:.1f}x as far from {self.source} as {self.source}'s own test split"
                for t in (ts if len(ts) <= 2 else (ts[0], ts[-1]))]
        out = "; ".join(said) + f" (Fréchet distance of {_body(self)} features)."
        sat = [t.target for t in ts if t.proxy_a >= 0.98 * SATURATES["proxy_a"]]
        if len(sat) > 1:
            out += f" The proxy A-distance is at its ceiling for {', '.join(sat)}: it cannot order those."
        if self.correlation is not None:
            out += (f" Transfer's gain at {GAIN_SHOTS} images per class (linear probe minus scratch) against "
                    f"the distance: Spearman's rho {self.correlation:+.2f} over {len(ts)} targets.")
        return out


def _body(s: Shift) -> str:
    weights = s.weights if s.weights in ("none", "imagenet") else s.weights.rstrip("/").rsplit("/", 1)[-1]
    return f"{s.backbone} ({weights})"


def shift(source: ImageData, targets: Sequence[ImageData], *, backbone: str, weights: str, images: int = SAMPLE,
          gain: Callable[[ImageData], tuple[float, float]] | None = None, seed: int = 0,
          stop: StopToken | None = None, say: Callable[[str], None] = lambda line: None) -> Shift:
    """Each target's distance from ``source`` in the features of ``backbone`` with ``weights``;
    ``gain(target)`` (e.g. :func:`tlcore.studies.curve.transfer_gain`): its (probe, scratch) accuracies."""
    stop = stop or StopToken()
    model = source_body(backbone, weights, len(source.classes))
    small = min([len(source.test)] + [len(t.test) for t in targets])
    if small < images:
        raise TLCoreError(f"A shift compares {images} images a side; the smallest test split has {small}: "
                          f"ask for at most {small} (--images).")
    say(f"{source.name}: features of {images} training and {images} test images")
    src = _embed(model, _sample(source.train, images, seed), stop)
    width = _median_distance(src)
    out = Shift(source.name, backbone, weights, images,
                anchor=_distances(src, _embed(model, _sample(source.test, images, seed), stop), width, seed))
    for target in targets:
        t0 = time.perf_counter()
        say(f"{target.name}: features of {images} test images")
        feats = _embed(model, _sample(target.test, images, seed), stop)
        d = _distances(src, feats, width, seed)
        shared = len(set(source.classes) & set(target.classes))
        row = Target(target.name, **d, relative=d["frechet"] / max(out.anchor["frechet"], 1e-12),
                     classes=len(target.classes), shared_classes=shared, label_shift=_label_shift(source, target))
        if gain is not None:
            say(f"{target.name}: linear probe and scratch, {GAIN_SHOTS} per class")
            row.probe_accuracy, row.scratch_accuracy = gain(target)
            row.gain = row.probe_accuracy - row.scratch_accuracy
        row.seconds = time.perf_counter() - t0
        out.targets.append(row)
    if gain is not None and len(out.targets) >= 3:
        from scipy.stats import spearmanr

        out.correlation = float(spearmanr([t.relative for t in out.targets], [t.gain for t in out.targets]).statistic)
    return out


def from_saved_source(data: ImageData, backbone: str, weights: str, seed: int = 0) -> Shift | None:
    """``data``'s distance from a saved source run's own data, its replay sample standing for it
    (60 training and 50 test images a class, kept with the run), always at SAMPLE images a side;
    None for ImageNet, random weights, a run without a sample, or a test split smaller than that.
    The ratio depends on the sample size (the anchor shrinks as 1/n: digits measured 8x MNIST's
    own test split at 40 images a side, 19x at 100, 43x at 300), so one size is used throughout."""
    if weights in ("none", "imagenet"):
        return None
    meta = read_run_config(weights)  # (the model itself is loaded once, by shift)
    source = load_replay(weights, list(meta["classes"]))
    if source is None or meta["backbone"] != backbone:
        return None
    if min(len(source.test), len(source.train), len(data.test)) < SAMPLE:
        return None
    source.name = str((meta.get("run") or {}).get("dataset") or source.name)
    return shift(source, [data], backbone=backbone, weights=weights, images=SAMPLE, seed=seed)


def _sample(split, n: int, seed: int) -> torch.Tensor:
    """About ``n`` images of ``split``, every class alike: a random draw's class mix alone moved
    MNIST's anchor from 0.8 to 2.4 over four seeds, an even one kept it within 0.5-0.8."""
    classes = int(split.labels.max()) + 1 if len(split) else 1
    return split.images[few_shot(split.labels, max(1, n // classes), seed)]


def _embed(model, images: torch.Tensor, stop: StopToken) -> np.ndarray:
    feats = compute_features(model, images, torch.device("cpu"), batch_size=100, amp=None, stop=stop)
    if feats is None:
        raise TLCoreError("Stopped while measuring the shift.")
    return feats.numpy().astype(np.float64)


def _distances(a: np.ndarray, b: np.ndarray, width: float, seed: int) -> dict[str, float]:
    return {"frechet": frechet(a, b), "mmd": mmd(a, b, width), "proxy_a": proxy_a(a, b, seed)}


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + tr(Ca + Cb - 2 (Ca Cb)^1/2); the trace of the root from the eigenvalues of
    Ca^1/2 Cb Ca^1/2 (symmetric, so real), not from a general matrix square root."""
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(ca)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cb @ root_a), 0, None)).sum()
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * cross)


def _median_distance(a: np.ndarray) -> float:
    d = np.sqrt(np.maximum(_squared(a, a), 0))
    return float(np.median(d[np.triu_indices(len(a), 1)])) or 1.0


def _squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T


def mmd(a: np.ndarray, b: np.ndarray, width: float) -> float:
    """Squared MMD (the biased estimate, >= 0) with the kernel exp(-|x - y|^2 / (2 width^2)); at most 2."""
    k = lambda x, y: np.exp(-np.maximum(_squared(x, y), 0) / (2 * width * width)).mean()  # noqa: E731
    return float(max(k(a, a) + k(b, b) - 2 * k(a, b), 0.0))


def proxy_a(a: np.ndarray, b: np.ndarray, seed: int) -> float:
    """2 (1 - 2 err) of a logistic regression separating ``a`` from ``b`` (5-fold error), within [0, 2]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    x, y = np.concatenate([a, b]), np.r_[np.zeros(len(a)), np.ones(len(b))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    with threadpool_limits(1):
        err = 1 - cross_val_score(clf, x, y, cv=_folds(seed)).mean()
    return float(min(max(2 * (1 - 2 * err), 0.0), 2.0))


def _folds(seed: int):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(5, shuffle=True, random_state=seed)


def _label_shift(source: ImageData, target: ImageData) -> float:
    """Total variation between the class frequencies of the two training splits, over class names."""
    p, q = (dict(zip(d.classes, np.array(d.class_counts("train")) / max(len(d.train), 1))) for d in (source, target))
    return float(0.5 * sum(abs(p.get(c, 0.0) - q.get(c, 0.0)) for c in set(p) | set(q)))
