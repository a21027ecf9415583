"""Judging a model on held-out images: accuracy, per-class metrics, confusion matrix, ROC.

scikit-learn does the math. :func:`evaluate_probs` is pure (labels and probabilities in,
numbers out), so the feature-cache path and the image path share it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import auc, confusion_matrix, precision_recall_fscore_support, roc_curve

from .. import distributed
from .predict import predict_probs


@dataclass
class RocCurve:
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


@dataclass
class Evaluation:
    classes: list[str]
    labels: np.ndarray  # (N,) true class indices
    probs: np.ndarray  # (N, K) softmax probabilities
    accuracy: float
    per_class: pd.DataFrame  # class, precision, recall, f1, support
    confusion: np.ndarray  # (K, K) counts, rows = true class
    roc: dict[str, RocCurve]  # one-vs-rest per class (classes absent from the labels are left out)
    micro: RocCurve
    macro: RocCurve

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1)

    @property
    def confusion_normalized(self) -> np.ndarray:
        """Rows sum to 1 (recall on the diagonal); an absent class's row stays 0."""
        rows = self.confusion.sum(1, keepdims=True)
        return np.divide(self.confusion, rows, out=np.zeros_like(self.confusion, dtype=float), where=rows > 0)

    def most_confident_wrong(self, k: int = 16) -> np.ndarray:
        """Indices of the wrong predictions made with the highest confidence."""
        wrong = np.nonzero(self.preds != self.labels)[0]
        conf = self.probs[wrong, self.preds[wrong]]
        return wrong[np.argsort(-conf, kind="stable")][:k]

    def cell(self, true: int, pred: int) -> np.ndarray:
        """Indices of images of class ``true`` predicted as ``pred``, most confident first."""
        idx = np.nonzero((self.labels == true) & (self.preds == pred))[0]
        return idx[np.argsort(-self.probs[idx, pred], kind="stable")]

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes the labels hold: what skewed classes cannot inflate."""
        present = self.per_class["support"] > 0
        return float(self.per_class.loc[present, "recall"].mean()) if present.any() else float("nan")

    def recalls(self) -> dict[str, float]:
        """Each class's recall (the share of its images called by its name), classes without images left out."""
        rows = self.per_class[self.per_class["support"] > 0]
        return {str(c): round(float(r), 4) for c, r in zip(rows["class"], rows["recall"])}

    def to_dict(self) -> dict:
        """The JSON summary (CLI ``evaluate --json``, metrics.json)."""
        return {
            "accuracy": self.accuracy,
            "macro_auc": self.macro.auc,
            "micro_auc": self.micro.auc,
            "confusion_matrix": self.confusion.tolist(),
            "per_class": self.per_class.to_dict(orient="records"),
            "classes": list(self.classes),
            "size": int(len(self.labels)),
        }


def evaluate_probs(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> Evaluation:
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    k = len(classes)
    preds = probs.argmax(1)
    ids = list(range(k))
    p, r, f, s = precision_recall_fscore_support(labels, preds, labels=ids, zero_division=0)
    per_class = pd.DataFrame({"class": classes, "precision": p, "recall": r, "f1": f, "support": s})
    cm = confusion_matrix(labels, preds, labels=ids)
    onehot = np.eye(k, dtype=int)[labels]
    roc, grid, tprs = {}, np.linspace(0, 1, 201), []
    for c in ids:
        if 0 < onehot[:, c].sum() < len(labels):  # ROC needs positives and negatives
            fpr, tpr, _ = roc_curve(onehot[:, c], probs[:, c])
            roc[classes[c]] = RocCurve(fpr, tpr, float(auc(fpr, tpr)))
            tprs.append(np.interp(grid, fpr, tpr))
    fpr, tpr, _ = roc_curve(onehot.ravel(), probs.ravel())
    micro = RocCurve(fpr, tpr, float(auc(fpr, tpr)))
    if tprs:
        mean_tpr = np.mean(tprs, 0)
        mean_tpr[0] = 0.0
        # Macro AUC is the mean of the per-class AUCs (sklearn's roc_auc_score(average="macro")).
        macro = RocCurve(grid, mean_tpr, float(np.mean([c.auc for c in roc.values()])))
    else:
        macro = RocCurve(grid, grid, float("nan"))
    return Evaluation(list(classes), labels, probs, float((preds == labels).mean()) if len(labels) else 0.0,
                      per_class, cm, roc, micro, macro)


def evaluate(model, images: torch.Tensor, labels: torch.Tensor, classes: list[str], *, shared: bool = False,
             **kw) -> Evaluation:
    """Run ``model`` over a split and compute every metric. ``shared``: in a distributed run, each
    rank predicts its share of the images and every rank gets all the probabilities."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if shared:
            probs = distributed.split_rows(lambda x: predict_probs(model, x, **kw), images)
        else:
            probs = predict_probs(model, images, **kw)
    return evaluate_probs(labels.cpu().numpy(), probs.numpy(), classes)
