"""Figures and pictures from engine results (plotly and numpy only; the UI just shows them)."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch

from ..data import ImageData


def class_count_figure(data: ImageData) -> go.Figure:
    """Stacked bars: images per class in each split."""
    fig = go.Figure()
    for split in ("train", "val", "test"):
        fig.add_bar(name=split, x=data.classes, y=data.class_counts(split))
    fig.update_layout(barmode="stack", height=300, margin=dict(l=40, r=10, t=30, b=40),
                      title="Images per class", legend=dict(orientation="h", y=1.12, x=1, xanchor="right"))
    return fig


def enlarged(images: torch.Tensor, min_side: int = 64) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, 3, H*k, W*k), enlarged (nearest) to at least ``min_side``."""
    x = images
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    scale = max(1, -(-min_side // x.shape[-1]))
    if scale > 1:
        x = x.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    return x


def to_display(images: torch.Tensor, min_side: int = 64) -> list[np.ndarray]:
    """uint8 (N, C, H, W) -> HxWx3 arrays, enlarged (nearest) so 8x8 digits are visible."""
    return [a for a in enlarged(images, min_side).permute(0, 2, 3, 1).contiguous().numpy()]


def examples(data: ImageData, per_class: int = 4, split: str = "train") -> list[tuple[np.ndarray, str]]:
    """The first ``per_class`` images of every class, captioned with the class name."""
    s = data.splits[split]
    out = []
    for c, name in enumerate(data.classes):
        idx = torch.nonzero(s.labels == c).flatten()[:per_class]
        out += [(img, name) for img in to_display(s.images[idx])]
    return out


# Legends go under the chart: above it they covered the top of the curves, where accuracy lives.
LEGEND_BELOW = dict(orientation="h", x=0, xanchor="left", y=-0.3, yanchor="top")
# A loss chart switches to a log axis when its values span more than this factor (a blow-up
# would otherwise flatten everything else into a line at zero).
LOG_SPAN = 100.0


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 300) -> go.Figure:
    fig.update_layout(title=title, height=height + 40, margin=dict(l=50, r=10, t=40, b=90), xaxis_title=x,
                      yaxis_title=y, legend=LEGEND_BELOW)
    return fig


def _spans_decades(values: list[float]) -> bool:
    v = [a for a in values if math.isfinite(a) and a > 0]
    return bool(v) and max(v) / min(v) > LOG_SPAN


def training_figures(steps: list[tuple[float, float, float]], epochs: list,
                     unfreezes: list = (), chance: float | None = None) -> tuple[go.Figure, go.Figure]:
    """Live loss and accuracy charts.

    Args:
        steps: (fractional epoch, running train loss, running train accuracy) within epochs.
        epochs: EpochEvent-like objects with train/val loss and accuracy.
        unfreezes: UnfreezeEvent-like objects: a dashed line where each epoch with more groups began.
        chance: the accuracy of guessing (1 / classes), marked on the accuracy chart.
    """
    loss, acc = go.Figure(), go.Figure()
    if steps:
        x = [s[0] for s in steps]
        mode = "lines" if len(steps) > 2 else "lines+markers"  # a point or two would not show as a line
        loss.add_scatter(x=x, y=[s[1] for s in steps], mode=mode, name="train (running)",
                         line=dict(color="#94a3b8", width=1))
        acc.add_scatter(x=x, y=[s[2] for s in steps], mode=mode, name="train (running)",
                        line=dict(color="#94a3b8", width=1))
    if epochs:
        ex = [e.epoch for e in epochs]
        loss.add_scatter(x=ex, y=[e.train_loss for e in epochs], mode="lines+markers", name="train")
        loss.add_scatter(x=ex, y=[e.val_loss for e in epochs], mode="lines+markers", name="validation")
        acc.add_scatter(x=ex, y=[e.train_accuracy for e in epochs], mode="lines+markers", name="train")
        acc.add_scatter(x=ex, y=[e.val_accuracy for e in epochs], mode="lines+markers", name="validation")
    _layout(loss, "Loss", "epoch", "cross-entropy")
    ys = [s[1] for s in steps] + [v for e in epochs for v in (e.train_loss, e.val_loss)]
    if _spans_decades(ys):
        loss.update_yaxes(type="log", title="cross-entropy (log scale)")
    _layout(acc, "Accuracy", "epoch", "accuracy")
    acc.update_yaxes(range=accuracy_range([v for e in epochs for v in (e.train_accuracy, e.val_accuracy)], chance))
    if chance is not None:
        _mark_chance(acc, chance)
    for u in unfreezes:
        _mark_unfreeze(loss, u)
        _mark_unfreeze(acc, u)
    return loss, acc


ACCURACY_PAD = 0.05  # around the data, so the top points are not on the chart's edge
MIN_ACCURACY_SPAN = 0.1  # an axis narrower than this would make a flat run look like a wild one
CHANCE_NEAR = 0.15  # chance this close below the data (or within the data's own span) goes on the axis


def accuracy_range(values: list[float], chance: float | None = None) -> list[float]:
    """The accuracy axis fitted to the epochs' accuracies (0 to 1 before there are any): on an axis
    from 0 to 1 a run between 95% and 99% is a flat line at the top. Chance is shown when it falls
    near the data; far below it, it is said on the chart instead (:func:`_mark_chance`). The
    running line's first batches may start below the axis: it is drawn there, cut at the edge."""
    v = [a for a in values if math.isfinite(a)]
    if not v:
        return [0.0, 1.02]
    lo, hi = min(v) - ACCURACY_PAD, max(v) + ACCURACY_PAD
    if chance is not None and lo - chance <= max(CHANCE_NEAR, hi - lo):  # near: the axis stretches to it
        lo = min(lo, chance - ACCURACY_PAD)
    lo = max(0.0, min(lo, hi - MIN_ACCURACY_SPAN))
    return [lo, min(1.02, max(hi, lo + MIN_ACCURACY_SPAN))]


def _mark_chance(fig: go.Figure, chance: float) -> None:
    """A dotted line at chance, or, below the axis, a note at its foot saying where chance is."""
    lo = fig.layout.yaxis.range[0]
    text = f"chance {chance:.0%}"
    if chance >= lo:
        fig.add_hline(y=chance, line=dict(color="#94a3b8", dash="dot", width=1.5),
                      annotation_text=text, annotation_position="bottom right", annotation_font_size=10)
    else:
        fig.add_annotation(x=1, xref="paper", y=0, yref="paper", text=f"{text} (below the axis)", showarrow=False,
                           xanchor="right", yanchor="bottom", font=dict(size=10, color="#64748b"))


UNFREEZE_COLOR = "#f59e0b"


def _mark_unfreeze(fig: go.Figure, u) -> None:
    """A dashed line at the start of the epoch the groups joined in, labelled with them."""
    text = "+" + ", ".join(u.thawed)
    fig.add_vline(x=u.epoch - 1, line=dict(color=UNFREEZE_COLOR, dash="dash", width=1.5))
    fig.add_annotation(x=u.epoch - 1, y=1, yref="paper", text=text, showarrow=False, xanchor="left",
                       yanchor="top", textangle=-90, font=dict(size=10, color=UNFREEZE_COLOR),
                       hovertext=f"epoch {u.epoch}: {', '.join(u.live)} train")


def lr_find_figure(finding) -> go.Figure:
    """The sweep's smoothed loss against the learning rate on a log axis, the suggestion marked."""
    fig = go.Figure()
    fig.add_scatter(x=finding.lrs, y=finding.raw_losses, mode="markers", name="each batch",
                    marker=dict(color="#94a3b8", size=4))
    fig.add_scatter(x=finding.lrs, y=finding.losses, mode="lines", name="smoothed (centred median)",
                    line=dict(color="#6366f1", width=2))
    lr = finding.suggested_lr
    near = min(range(len(finding.lrs)), key=lambda i: abs(math.log(finding.lrs[i] / lr)))
    fig.add_scatter(x=[lr], y=[finding.losses[near]], mode="markers", name=f"suggested: {lr:.3g}",
                    marker=dict(color="#dc2626", size=12, symbol="circle"))
    fig.add_vline(x=lr, line=dict(color="#dc2626", dash="dot", width=1))
    fig.update_xaxes(type="log", exponentformat="power")
    finite = [v for v in finding.losses if v is not None and math.isfinite(v)]
    if finite:  # the blown-up last point would flatten the curve
        lo, first = min(finite), finite[0]
        fig.update_yaxes(range=[lo - 0.1 * (first - lo + 1e-3), max(first, lo) + 0.5 * (first - lo + 1e-3)])
    _layout(fig, f"Learning-rate finder: suggested {lr:.3g}", "learning rate (head; log scale)", "loss (smoothed)")
    return fig


def confusion_figure(cm: np.ndarray, classes: list[str], normalized: bool = False) -> go.Figure:
    """Heatmap, rows = true class; hover shows the count and the row share."""
    rows = cm.sum(1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    z = share if normalized else cm
    text = [[f"{share[i, j]:.0%}" if normalized else f"{cm[i, j]}" for j in range(len(classes))]
            for i in range(len(classes))]
    fig = go.Figure(go.Heatmap(
        z=z, x=classes, y=classes, colorscale="Blues", text=text, texttemplate="%{text}" if len(classes) <= 20 else None,
        customdata=np.dstack([cm, share]),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata[0]} images (%{customdata[1]:.1%} of row)<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true class", type="category")
    fig.update_xaxes(title="predicted class", type="category")
    side = min(700, 260 + 28 * len(classes))
    fig.update_layout(title="Confusion matrix" + (" (row-normalized)" if normalized else ""), height=side,
                      margin=dict(l=60, r=10, t=40, b=50))
    return fig


ROC_HAIR = 0.995  # every class's AUC at least this: the curves cannot be told apart on the chart


def all_near_one(ev) -> bool:
    """Every class's ROC AUC within a hair of 1 (see ROC_HAIR)."""
    return bool(ev.roc) and min(c.auc for c in ev.roc.values()) >= ROC_HAIR


def roc_figure(ev) -> go.Figure:
    """One-vs-rest ROC per class, plus micro and macro averages, AUC in the legend. When every
    class is within a hair of AUC 1 the curves lie on top of each other: the title says so and the
    legend keeps only the averages (the per-class table has each class's AUC)."""
    fig = go.Figure()
    hair = all_near_one(ev)
    for name, c in ev.roc.items():
        fig.add_scatter(x=c.fpr, y=c.tpr, mode="lines", name=f"{name} (AUC {c.auc:.3f})", line=dict(width=1),
                        showlegend=not hair)
    fig.add_scatter(x=ev.micro.fpr, y=ev.micro.tpr, mode="lines", name=f"micro (AUC {ev.micro.auc:.3f})",
                    line=dict(width=3, dash="dot", color="black"))
    fig.add_scatter(x=ev.macro.fpr, y=ev.macro.tpr, mode="lines", name=f"macro (AUC {ev.macro.auc:.3f})",
                    line=dict(width=3, dash="dash", color="#dc2626"))
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#cbd5e1", dash="dot"), showlegend=False,
                    hoverinfo="skip")
    title = f"ROC: every class at AUC ≥ {ROC_HAIR} (curves overlap)" if hair else "ROC curves (one class vs rest)"
    _layout(fig, title, "false positive rate", "true positive rate", 420)
    # Inside, bottom right: the corner a useful classifier's curves never reach (to the right of
    # the plot, long class names squeezed the legend to nothing).
    fig.update_layout(height=460, margin=dict(l=50, r=10, t=40, b=50),
                      legend=dict(orientation="v", x=0.99, y=0.01, xanchor="right", yanchor="bottom",
                                  bgcolor="rgba(255,255,255,0.85)", font=dict(size=10)))
    return fig


def probability_figure(probs: dict[str, float]) -> go.Figure:
    names = list(probs)
    fig = go.Figure(go.Bar(x=names, y=[probs[n] for n in names], marker_color="#6366f1"))
    fig.update_yaxes(range=[0, 1])
    fig.update_xaxes(type="category")
    return _layout(fig, "All classes", "class", "probability", 260)


STRATEGY_COLORS = {"scratch": "#64748b", "linear-probe": "#6366f1", "fine-tune": "#10b981", "semi-supervised": "#f59e0b"}
# A curve's strategy as its legend names it: semi-supervised is the linear probe plus the unlabelled images.
LINE_NAMES = {"semi-supervised": "linear-probe + the unlabelled images"}


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def curve_figure(results: list[dict], n_classes: int, title: str = "Test accuracy against samples per class") -> go.Figure:
    """One line per strategy (mean over seeds), the spread (mean ± one standard deviation) shaded;
    samples per class on a log axis, "all" placed at the whole split's per-class count."""
    fig = go.Figure()
    for strategy in dict.fromkeys(r["strategy"] for r in results):
        rows = sorted((r for r in results if r["strategy"] == strategy),
                      key=lambda r: r["n_train"])
        x = [r["shots"] or r["n_train"] / n_classes for r in rows]
        mean, std = np.array([r["accuracy"] for r in rows]), np.array([r["std"] for r in rows])
        color = STRATEGY_COLORS.get(strategy, "#f59e0b")
        fig.add_scatter(x=x, y=mean + std, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=x, y=mean - std, mode="lines", line=dict(width=0), fill="tonexty",
                        fillcolor=_rgba(color, 0.18), showlegend=False, hoverinfo="skip")
        name = LINE_NAMES.get(strategy, strategy)
        fig.add_scatter(x=x, y=mean, mode="lines+markers", name=name, line=dict(color=color, width=3,
                        dash="dash" if strategy in LINE_NAMES else "solid"),
                        customdata=np.stack([std, [r["seeds"] for r in rows]], 1),
                        hovertemplate=(f"{name}<br>%{{x:.0f}} per class<br>accuracy %{{y:.1%}} "
                                       "± %{customdata[0]:.1%} (%{customdata[1]} seeds)<extra></extra>"))
    shots = sorted({r["shots"] or r["n_train"] / n_classes for r in results})
    fig.update_xaxes(type="log", tickvals=shots,
                     ticktext=[f"{s:g}" if any(r["shots"] == s for r in results) else "all" for s in shots])
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    _layout(fig, title, "training images per class (log scale)", "test accuracy", 380)
    fig.update_layout(legend_traceorder="normal")
    return fig


def overlay_figure(histories: dict[str, list], metric: str = "val_accuracy",
                   title: str = "Validation accuracy") -> go.Figure:
    """Several runs' per-epoch ``metric`` in one chart (EpochEvents or their dicts)."""
    fig = go.Figure()
    for name, history in histories.items():
        rows = [h if isinstance(h, dict) else vars(h) for h in history]
        fig.add_scatter(x=[h["epoch"] for h in rows], y=[h[metric] for h in rows], mode="lines+markers", name=name)
    if metric.endswith("accuracy"):
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return _layout(fig, title, "epoch", metric.replace("_", " "), 360)


def forgetting_figure(before: float, after: dict[str, float], target: dict[str, float]) -> go.Figure:
    """The source task before and after each fine-tune (bars), beside each one's new-task accuracy."""
    names = list(after)
    fig = go.Figure()
    fig.add_bar(x=["before", *names], y=[before, *after.values()], name="source task (MNIST)", marker_color="#1f77b4",
                text=[f"{v:.0%}" for v in (before, *after.values())], textposition="outside")
    fig.add_bar(x=names, y=[target[n] for n in names], name="new task (digits test)", marker_color="#f59e0b",
                text=[f"{target[n]:.0%}" for n in names], textposition="outside")
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    _layout(fig, "What each fine-tune kept of the source task", "", "test accuracy", 360)
    return fig


# One colour per class, the same in both panels; past 24 classes the colours repeat.
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                "#17becf", "#393b79", "#ad494a", "#8ca252", "#bd9e39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
                "#756bb1", "#636363", "#6baed6", "#fd8d3c", "#74c476", "#9e9ac8")
PROJECTION_NAMES = {"pca": "PCA", "tsne": "t-SNE"}


def feature_space_figure(panels: list[tuple[str, np.ndarray, np.ndarray]], labels: np.ndarray,
                         classes: list[str], method: str = "pca", preds: np.ndarray | None = None) -> go.Figure:
    """Side-by-side 2-D projections of features, one colour per class (a legend entry toggles it in both).

    Args:
        panels: (title, indices into the test images, (M, 2) coordinates) per panel.
        labels: true class of every test image; ``preds``: the run's prediction of each, for the hover.
    Each point's customdata starts with its test image index (a click shows that image).
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], horizontal_spacing=0.06)
    for col, (_, idx, xy) in enumerate(panels, start=1):
        for c, name in enumerate(classes):
            keep = labels[idx] == c
            if not keep.any():
                continue
            rows = idx[keep]
            pred = [classes[p] for p in preds[rows]] if preds is not None else ["–"] * len(rows)
            fig.add_scatter(
                x=xy[keep, 0], y=xy[keep, 1], mode="markers", name=name, legendgroup=name, showlegend=col == 1,
                marker=dict(size=6, color=CLASS_COLORS[c % len(CLASS_COLORS)], opacity=0.8),
                customdata=np.stack([rows, np.array(pred, dtype=object)], 1),
                hovertemplate=f"class {name}<br>predicted %{{customdata[1]}}<br>test image #%{{customdata[0]}}"
                              "<br>(click to see it)<extra></extra>", row=1, col=col)
    fig.update_xaxes(showticklabels=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, zeroline=False)
    # The title is centred: at the left, the app's label for the chart covers it.
    fig.update_layout(height=540, margin=dict(l=20, r=20, t=100, b=20), hovermode="closest",
                      title=dict(text=f"Test features, {PROJECTION_NAMES.get(method, method)} to 2-D, coloured by class",
                                 x=0.5, xanchor="center", y=0.97, yanchor="top"),
                      legend=dict(title="class", itemsizing="constant", font=dict(size=12)))
    return fig


def shift_figure(shift: dict) -> go.Figure:
    """Each target at its distance from the source (relative Fréchet, log scale), against the
    transfer's gain when it was measured (else the proxy A-distance, which saturates at 2)."""
    targets = sorted(shift["targets"], key=lambda t: t["relative"])
    gained = all(t.get("gain") is not None for t in targets)
    y = [t["gain"] if gained else t["proxy_a"] for t in targets]
    fig = go.Figure()
    fig.add_scatter(x=[max(t["relative"], 1e-3) for t in targets], y=y, mode="markers+text",
                    text=[t["target"] for t in targets], textposition="top center", marker=dict(size=11),
                    customdata=[[t["frechet"], t["mmd"], t["proxy_a"]] for t in targets], showlegend=False,
                    hovertemplate="%{text}<br>%{x:.1f}x the source's own test split<br>Fréchet %{customdata[0]:.2f}"
                                  " · MMD %{customdata[1]:.3f} · proxy A %{customdata[2]:.2f}<extra></extra>")
    if gained:
        fig.add_hline(y=0, line=dict(color="#9ca3af", dash="dot"))
        fig.update_yaxes(tickformat="+.0%")
        title = f"Transfer's gain against distance from {shift['source']}"
        ylabel = f"gain at {shift['gain_shots']} per class (probe minus scratch)"
    else:
        fig.update_yaxes(range=[0, 2.1])
        title, ylabel = f"Distance from {shift['source']}", "proxy A-distance (saturates at 2)"
    fig.update_xaxes(type="log")
    return _layout(fig, title, f"Fréchet distance, in units of {shift['source']}'s own test split (log)", ylabel, 380)
