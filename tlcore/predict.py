"""Labelling image files with a trained model (the CLI's ``predict``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .data.images import ImageRejected, decode_image
from .errors import TLCoreError
from .evaluate import predict_probs
from .preprocess import InputSpec


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
