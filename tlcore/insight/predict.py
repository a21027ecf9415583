"""Predicting: class probabilities for a batch of images, and labelling image files (the CLI's ``predict``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.images import ImageRejected, decode_image
from ..data.stream import chunks
from ..errors import TLCoreError
from ..models.fold import for_pass
from ..preprocess import InputSpec, pass_batch, prepare


@torch.inference_mode()
def predict_probs(model, images: torch.Tensor, *, batch_size: int | None = None, device: str | torch.device = "cpu",
                  autocast_dtype: torch.dtype | None = None, stop=None) -> torch.Tensor:
    """Softmax probabilities (N, K) on the CPU for uint8 images (N, C, H, W) of any size.

    ``batch_size``: default :func:`tlcore.preprocess.pass_batch` at the model's side (up to 512).
    ``stop`` (a StopToken) is checked before every batch: StopRequested ends it early.
    """
    device = torch.device(device)
    batch_size = batch_size or pass_batch(model.spec.size, most=512)
    was_training = model.training
    if was_training:  # a model already in eval mode (every served one) is never touched: thread-safe and cheaper
        model.eval()
    out = []
    try:
        # A split (a run's test images, an evaluation) goes through a copy with its BatchNorms
        # folded, laid out channels_last as the feature pass is: EfficientNet-Lite0 at 128 and 224 px
        # on a 2-core CPU, 1.35x and 1.39x the plain model's rate (warm, 1,000 CIFAR-10 test images).
        net = for_pass(model, model.spec, len(images))
        for batch in chunks(images, batch_size):
            if stop is not None:
                stop.check()
            x = prepare(batch.to(device), model.spec).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                out.append(net(x).float().softmax(1).cpu())
    finally:
        if was_training:
            model.train()
    return torch.cat(out) if out else torch.zeros(0, model.num_classes)


def load_image_files(paths: list[str], spec: InputSpec) -> torch.Tensor:
    """Decode files to a uint8 batch (N, C, S, S) at the model's size; C follows the model."""
    arrays = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as e:
            raise TLCoreError(f"Cannot read {p}: {e.strerror}.") from None
        try:
            arr, _ = decode_image(data, spec.size)
        except ImageRejected as e:
            raise TLCoreError(f"{p}: {e.reason}.") from None
        arrays.append(arr)
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return x[:, :1] if spec.channels == 1 else x


def predict_files(model, images: torch.Tensor) -> list[dict[str, float]]:
    """Class-name -> probability, one dict per image."""
    classes = model.classes or [str(i) for i in range(model.num_classes)]
    probs = predict_probs(model, images)
    return [{c: round(float(p), 6) for c, p in zip(classes, row)} for row in probs]
