"""Figures and pictures from engine results (plotly and numpy only; the UI just shows them)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from .data import ImageData


def class_count_figure(data: ImageData) -> go.Figure:
    """Stacked bars: images per class in each split."""
    fig = go.Figure()
    for split in ("train", "val", "test"):
        fig.add_bar(name=split, x=data.classes, y=data.class_counts(split))
    fig.update_layout(barmode="stack", height=300, margin=dict(l=40, r=10, t=30, b=40),
                      title="Images per class", legend=dict(orientation="h", y=1.12, x=1, xanchor="right"))
    return fig


def to_display(images: torch.Tensor, min_side: int = 64) -> list[np.ndarray]:
    """uint8 (N, C, H, W) -> HxWx3 arrays, enlarged (nearest) so 8x8 digits are visible."""
    x = images
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    scale = max(1, -(-min_side // x.shape[-1]))
    if scale > 1:
        x = x.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    return [a for a in x.permute(0, 2, 3, 1).contiguous().numpy()]


def examples(data: ImageData, per_class: int = 4, split: str = "train") -> list[tuple[np.ndarray, str]]:
    """The first ``per_class`` images of every class, captioned with the class name."""
    s = data.splits[split]
    out = []
    for c, name in enumerate(data.classes):
        idx = torch.nonzero(s.labels == c).flatten()[:per_class]
        out += [(img, name) for img in to_display(s.images[idx])]
    return out
