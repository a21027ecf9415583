"""Where the model looked: SmoothGrad input gradients for the predicted class.

Plain gradients are speckled; averaging them over a few noisy copies of the input
(SmoothGrad, Smilkov et al. 2017) gives a map a student can read over their drawing.
"""
from __future__ import annotations

import numpy as np
import torch

from ..preprocess import prepare
from ..registry import Registry

# The ways to show where a model looked, by name; each says in its docstring's first line what
# its map means, so a view can name its method. grad-cam registers in tlcore.insight.gradcam.
EXPLANATIONS: Registry = Registry("explanation")


@EXPLANATIONS.register(name="smoothgrad")
def saliency(model, images: torch.Tensor, *, samples: int = 16, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """SmoothGrad: which input pixels most change the predicted class's score.

    Returns (N, H, W) maps in [0, 1] at the model's input size, for uint8 ``images`` (N, C, H, W).
    """
    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    try:
        x = prepare(images, model.spec)
        with torch.no_grad():
            target = model(x).argmax(1)
        scale = float(x.max() - x.min()) or 1.0
        total = torch.zeros_like(x)
        for _ in range(samples):
            xn = (x + torch.randn(x.shape, generator=g) * noise * scale).requires_grad_(True)
            score = model(xn).gather(1, target[:, None]).sum()
            (grad,) = torch.autograd.grad(score, xn)
            total += grad.abs()
        m = total.sum(1)  # over channels
        m = m / m.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
        return m.numpy()
    finally:
        model.train(was)


def overlay(gray: np.ndarray, heat: np.ndarray, scale: int = 8) -> np.ndarray:
    """The input in gray with the map in red on top, enlarged for display (H*scale, W*scale, 3)."""
    base = np.repeat(gray[..., None].astype(np.float32) / 255 * 0.6, 3, -1)
    base[..., 0] = np.maximum(base[..., 0], heat)
    base[..., 1] *= 1 - heat * 0.7
    base[..., 2] *= 1 - heat * 0.7
    img = (base.clip(0, 1) * 255).astype(np.uint8)
    return np.kron(img, np.ones((scale, scale, 1), np.uint8))
