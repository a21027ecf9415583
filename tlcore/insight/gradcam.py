"""Where the last convolutional layer looked: Grad-CAM (Selvaraju et al. 2017).

The body's last spatial feature map A (N, C, h, w) is weighed channel by channel by the mean
gradient of a class score over that map; the positive part of the weighted sum, upsampled to
the image, is the map. For a linear probe this is exactly the class activation map: the head's
row for the class read at every position.

The map is taken through forward hooks on the body's modules (a public seam every backbone
has), so no backbone needs its own code: the target is the last 4-D output with a spatial
extent (the output of a timm model's ``forward_features``, LeNet-5's last conv block). A body
that turns its map into tokens after that (a ViT's patch embedding) is not convolutional, and
says so, rather than showing a map of its patch projection.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import TLCoreError
from ..models import TransferNet
from ..preprocess import prepare
from .saliency import EXPLANATIONS

MIN_MAP_SIDE = 16  # smaller images (scikit-learn's 8x8 digits) have too few pixels for a map to mean anything
TOO_SMALL = ("These images are {side}×{side} pixels: a map of where the model looked would be a few coarse cells "
             "over the whole image, empty background included, so none is drawn. Maps are drawn for images of "
             f"{MIN_MAP_SIDE}×{MIN_MAP_SIDE} px or more.")
NOT_CONV = ("Grad-CAM needs a convolutional body; {backbone} turns its image into tokens, so it has no last "
            "convolutional map to show.")


class _LastMap:
    """Forward hooks that keep the last spatial 4-D output of a body (and whether tokens came after it)."""

    def __init__(self, body: torch.nn.Module):
        self.map: torch.Tensor | None = None
        self.tokens_after = False
        self._handles = [m.register_forward_hook(self._hook) for m in body.modules()]

    def _hook(self, module, inputs, output) -> None:
        if not isinstance(output, torch.Tensor):
            return
        if output.dim() == 4 and output.shape[-1] * output.shape[-2] > 1:
            if output is not self.map:  # a wrapper returning its child's tensor is the same map
                self.map, self.tokens_after = output, False
        elif output.dim() == 3 and self.map is not None:
            self.tokens_after = True

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def is_convolutional(model: TransferNet) -> bool:
    """Whether Grad-CAM has a last convolutional map to read in ``model``'s body: a property of its
    architecture, probed once per backbone (a gallery redraw asks on every click)."""
    key = (model.backbone, model.spec.channels, model.spec.size)
    if key not in _CONVOLUTIONAL:
        _CONVOLUTIONAL[key] = _probe_convolutional(model)
    return _CONVOLUTIONAL[key]


_CONVOLUTIONAL: dict[tuple, bool] = {}


def _probe_convolutional(model: TransferNet) -> bool:
    was = model.training
    model.eval()  # one image through BatchNorm in training mode would fail
    spy = _LastMap(model.body)
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model.body(torch.zeros(1, model.spec.channels, model.spec.size, model.spec.size, device=device))
        return spy.map is not None and not spy.tokens_after
    finally:
        spy.close()
        model.train(was)


@EXPLANATIONS.register(name="grad-cam")
def gradcam(model: TransferNet, images: torch.Tensor, targets: torch.Tensor | None = None, *,
            raw: bool = False, size: tuple[int, int] | None = None) -> np.ndarray:
    """Grad-CAM: where the last convolutional layer looked for a class.

    Args:
        model: a TransferNet with a convolutional body (see :func:`is_convolutional`).
        images: uint8 (N, C, H, W), any size; they are prepared as the model expects.
        targets: the class of each image to explain (default: the predicted class).
        raw: the weighted sum itself, signed and unscaled (what the sanity checks rank: a map
            with no positive position is blank once clipped, and a blank map has no order).
        size: (H, W) of the maps (default: the images' own), e.g. the size they are shown at, so
            that a map over an enlarged 8x8 digit is smooth rather than 8x8 blocks.

    Returns:
        (N, H, W) float32 maps in [0, 1] (all 0 where no position speaks for the class).
    """
    was = model.training
    model.eval()
    spy = _LastMap(model.body)
    try:
        # The input asks for gradients so that a frozen body still passes them to its map.
        device = next(model.parameters()).device
        x = prepare(images.to(device), model.spec).requires_grad_(True)
        with torch.enable_grad():
            logits = model(x)
            if spy.map is None or spy.tokens_after:
                raise TLCoreError(NOT_CONV.format(backbone=model.backbone))
            if targets is None:
                targets = logits.argmax(1)
            score = logits.gather(1, targets.view(-1, 1).to(logits.device)).sum()
            (grad,) = torch.autograd.grad(score, spy.map)
        weights = grad.mean((2, 3), keepdim=True)  # one weight per channel: its mean gradient
        cam = (weights * spy.map.detach()).sum(1, keepdim=True)
        cam = F.interpolate(cam, size=size or images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        if raw:
            return cam.float().cpu().numpy()
        cam = cam.clamp_min(0)
        cam = cam / cam.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
        return cam.clamp(0, 1).float().cpu().numpy()
    finally:
        spy.close()
        model.train(was)


# Jet, as Grad-CAM maps are usually drawn: blue (nothing) through cyan, yellow to red (most).
_JET = np.array([[0, 0, .5], [0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0], [.5, 0, 0]], np.float32)
_JET_AT = np.array([0, .125, .375, .625, .875, 1], np.float32)


def heat_overlay(images: torch.Tensor, maps: np.ndarray, *, strength: float = 0.5) -> torch.Tensor:
    """uint8 (N, 3, H, W): the images (gray ones made RGB) blended with the maps in jet colours."""
    x = images.float() / 255
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    rgb = np.stack([np.interp(maps, _JET_AT, _JET[:, c]) for c in range(3)], 1)  # (N, 3, H, W)
    out = x * (1 - strength) + torch.from_numpy(rgb).float() * strength
    return (out.clamp(0, 1) * 255).round().to(torch.uint8)
