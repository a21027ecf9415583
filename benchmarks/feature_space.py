"""What the Evaluate tab's look inside costs: the feature pass, 5-NN, PCA, t-SNE, Grad-CAM.

    python benchmarks/feature_space.py

On digits (359 test images) from a run fine-tuned from the bundled MNIST LeNet-5 (full, 3
epochs, the app's suggested settings), and t-SNE of 1000 points with the machine's default
threads against one thread (tlcore.insight.feature_space limits it to one).

Last measured (2-core CPU shared with 4 other jobs, load ~11, torch 2.14.1 CPU): features and
5-NN before+after 1.6 s (5-NN alone 0.5 s); PCA 0.006 s; t-SNE of 359 points 1.0 s; t-SNE of
1000 points 3.5 s on one thread vs 57.8 s with the default threads (16.6x); 5-NN accuracy
0.969 before -> 0.983 after. Figures vary with the machine's load; the ratio is the point.
"""
from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlcore.config import RunConfig  # noqa: E402
from tlcore.data import load_dataset  # noqa: E402
from tlcore.training.suggest import suggested_for  # noqa: E402
from tlcore.insight.feature_space import feature_space, knn_accuracy, project  # noqa: E402
from tlcore.paths import BUNDLED_MNIST  # noqa: E402
from tlcore.training.train import train  # noqa: E402


def timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def tsne_threads() -> tuple[float, float]:
    """t-SNE of 1000 points: one thread (as tlcore runs it) and the default threads."""
    from sklearn.datasets import make_blobs
    from sklearn.manifold import TSNE

    x, _ = make_blobs(1000, n_features=84, centers=10, random_state=1)
    _, one = timed(project, x, "tsne")
    _, default = timed(TSNE(2, init="pca", random_state=0).fit_transform, x)
    return one, default


def main() -> None:
    data = load_dataset("digits")
    cfg = RunConfig(dataset="digits", weights=str(BUNDLED_MNIST), preset="full", epochs=3)
    cfg = dataclasses.replace(cfg, **{k: v for k, v in suggested_for(cfg, len(data.train)).items()
                                      if k != "epochs"}).validate()
    run = train(cfg, data=data, out=Path(tempfile.mkdtemp()) / "run")
    space, t_features = timed(feature_space, run.model, cfg.weights, data.test.images, data.test.labels)
    _, t_knn = timed(knn_accuracy, space.after.features, space.after.labels)
    _, t_pca = timed(project, space.after.features, "pca")
    _, t_tsne = timed(project, space.after.features, "tsne")
    print(f"features + 5-NN, before and after: {t_features:.2f} s; 5-NN alone {t_knn:.3f} s")
    print(f"PCA {t_pca:.3f} s; t-SNE of {len(data.test)} points {t_tsne:.2f} s")
    print(f"5-NN accuracy: before {space.before.knn_accuracy:.3f} -> after {space.after.knn_accuracy:.3f}")
    one, default = tsne_threads()
    print(f"t-SNE of 1000 points: one thread {one:.1f} s, default threads {default:.1f} s "
          f"(ratio {default / one:.1f}x)")
    assert np.isfinite(space.after.knn_accuracy)


if __name__ == "__main__":
    main()
