"""Capture: a class makes its own data (Teachable Machine's loop), measured like any other run.

Classes with names the user edits; webcam frames and uploaded photos added to them, each scaled
down once on arrival to :data:`SIDE` px and passed through the pretrained body once (its features
cached beside it), so that :meth:`Captured.train` fits only a head: seconds on a CPU. The head is
scored on a held-out fifth of the frames first (stratified, seeded), then refitted on all of them
for live prediction. The frames are a dataset like any other (:meth:`Captured.to_data`) and an
ImageFolder zip that loads back (:meth:`Captured.to_zip`).

Limits keep a shared server healthy: at most :data:`MAX_PER_CLASS` frames a class and
:data:`MAX_FRAMES` in all (about 36 MB at 224 px), :data:`MAX_CLASSES` classes.
"""
from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from ..data.base import ImageData, Split, stratified_split
from ..data.images import ImageRejected, decode_image
from ..errors import TLCoreError
from ..events import StopToken
from ..models import TransferNet, create_backbone, freeze
from ..training.feature_cache import compute_features
from .examples import Examples

SIDE = 224  # frames are kept at this square size: EfficientNet-Lite0's input, no resizing later
MAX_PER_CLASS, MAX_FRAMES, MAX_CLASSES = 60, 240, 10
BODY = ("efficientnet_lite0", "imagenet")  # the default pretrained body: ImageNet's features, offline
HELD_OUT = 0.2  # of each class's frames, to score the head before it is refitted on all


@dataclass
class Fitted:
    """A head fitted on the captured frames: its held-out score, then the model refitted on all."""

    model: TransferNet
    accuracy: float | None  # on the held-out fifth (None: too few frames to hold any out)
    held_out: int
    seconds: float

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "held_out": self.held_out, "seconds": round(self.seconds, 2),
                "classes": list(self.model.classes)}


@dataclass
class Captured(Examples):
    """A session's own classes and frames (SIDE x SIDE x 3 uint8), with the body's features of each
    frame: the labelled-examples store the Draw tab's drawings share (:mod:`tlcore.studies.examples`)."""

    classes: list[str] = field(default_factory=lambda: ["class 1", "class 2"])
    features: list[torch.Tensor] = field(default_factory=list)  # the body's, one row per frame
    backbone: str = BODY[0]
    weights: str = BODY[1]

    ZIP_FOLDER: ClassVar[str] = "my-captures"
    FORMAT: ClassVar[str] = "JPEG"
    NOUN: ClassVar[str] = "frames"

    # -- classes ----------------------------------------------------------------------------
    def set_classes(self, names: list[str]) -> None:
        """The classes as listed: a name kept keeps its frames, a name left out takes its frames with
        it, a new name is a new class; a new name standing where a name left out stood renames it
        (its frames follow)."""
        names = [n.strip() for n in names if n and n.strip()]
        if len(names) < 2:
            raise TLCoreError(f"Name at least 2 classes (a classifier needs two), got {len(names)}.")
        if len(names) > MAX_CLASSES:
            raise TLCoreError(f"At most {MAX_CLASSES} classes, got {len(names)}.")
        if len(set(names)) != len(names):
            raise TLCoreError(f"Each class needs its own name, got {', '.join(names)}.")
        renamed = {c: c for c in self.classes if c in names}
        renamed.update({old: new for old, new in zip(self.classes, names) if old not in names and new not in self.classes})
        keep = [i for i, label in enumerate(self.labels) if label in renamed]
        self.images, self.features = [self.images[i] for i in keep], [self.features[i] for i in keep]
        self.labels = [renamed[self.labels[i]] for i in keep]
        self.classes = names

    # -- frames -----------------------------------------------------------------------------
    def add(self, image, label: str) -> None:
        """Add a frame (an RGB/gray array, a PIL image or an image file's bytes) to class ``label``."""
        if label not in self.classes:
            raise TLCoreError(f"Unknown class {label!r}. The classes: {', '.join(self.classes)}.")
        if self.counts()[label] >= MAX_PER_CLASS or len(self) >= MAX_FRAMES:
            raise TLCoreError(f"{label!r} has {self.counts()[label]} frames and all classes {len(self)}: at most "
                              f"{MAX_PER_CLASS} a class and {MAX_FRAMES} in all are kept (delete some first).")
        frame = to_frame(image)
        self.features.append(self.embed(torch.from_numpy(frame).permute(2, 0, 1)[None])[0])
        self.append(frame, label)

    def remove(self, index: int) -> None:
        super().remove(index)
        del self.features[index]

    def clear(self) -> None:
        super().clear()
        self.features.clear()

    def counts(self) -> dict[str, int]:
        return {c: self.labels.count(c) for c in self.classes}

    # -- the body ---------------------------------------------------------------------------
    def body(self) -> TransferNet:
        return shared_body(self.backbone, self.weights)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The body's features of uint8 (N, 3, SIDE, SIDE) images, on the CPU."""
        f = compute_features(self.body(), images, torch.device("cpu"), batch_size=32, amp=None, stop=StopToken())
        return f.cpu()

    # -- the head ---------------------------------------------------------------------------
    def train(self, seed: int = 0) -> Fitted:
        """Score a head on a held-out fifth, then fit it on every frame; seconds for both."""
        t = time.perf_counter()
        missing = [c for c, n in self.counts().items() if n < 2]
        if missing:
            raise TLCoreError(f"Every class needs at least 2 frames; {', '.join(missing)} has fewer.")
        x = torch.stack(self.features)
        y = torch.tensor([self.classes.index(label) for label in self.labels])
        keep, held = stratified_split(y, HELD_OUT, seed)
        accuracy = None
        if len(held):
            head = _fit(x[keep], y[keep], len(self.classes))
            accuracy = float((head(x[held]).argmax(1) == y[held]).float().mean())
        model = self._model(_fit(x, y, len(self.classes)))
        return Fitted(model, accuracy, len(held), time.perf_counter() - t)

    def _model(self, head: torch.nn.Linear) -> TransferNet:
        """The body with ``head``: a model like any run's (it predicts, evaluates, exports)."""
        import copy

        model = copy.deepcopy(self.body())
        model.reset_classifier(len(self.classes))
        model.head.load_state_dict(head.state_dict())
        model.classes = list(self.classes)
        return model.eval()

    # -- as data ----------------------------------------------------------------------------
    def to_data(self, seed: int = 0) -> ImageData:
        """The frames as a dataset: a stratified fifth for test, a tenth of the rest for validation."""
        from ..data.base import finish

        if not self or min(self.counts().values()) < 2:
            raise TLCoreError("Every class needs at least 2 frames to become a dataset.")
        x, y = self.tensor(self.classes)
        keep, held = stratified_split(y, HELD_OUT, seed)
        return finish("my captures", list(self.classes), Split(x[keep], y[keep]), Split(x[held], y[held]), seed=seed,
                      hflip=True, source="capture")

    def predict(self, fitted: Fitted, image) -> dict[str, float]:
        """Class -> probability for one frame, through the fitted model's head on the body's features."""
        frame = torch.from_numpy(to_frame(image)).permute(2, 0, 1)[None]
        with torch.no_grad():
            probs = fitted.model.head(self.embed(frame)).softmax(1)[0]
        return {c: float(p) for c, p in zip(fitted.model.classes, probs)}


_BODIES: dict[tuple[str, str], TransferNet] = {}
_BODIES_LOCK = threading.Lock()


def shared_body(backbone: str, weights: str) -> TransferNet:
    """The frozen body every session's frames go through: built once per server (a classroom's thirty
    sessions share one, in eval mode, never trained)."""
    with _BODIES_LOCK:
        if (backbone, weights) not in _BODIES:
            body = create_backbone(backbone, weights=weights, num_classes=2, image_size=SIDE)
            _BODIES[backbone, weights] = freeze(body, preset="linear-probe").eval()
        return _BODIES[backbone, weights]


def to_frame(image) -> np.ndarray:
    """Any image (array, PIL image or file bytes) -> (SIDE, SIDE, 3) uint8, centre-cropped and scaled down."""
    if isinstance(image, (bytes, bytearray)):
        data = bytes(image)
    else:
        if isinstance(image, np.ndarray):
            if image.size == 0 or image.ndim not in (2, 3):
                raise TLCoreError("That frame is empty: the camera sent no picture.")
            image = Image.fromarray(image.astype(np.uint8))
        if not isinstance(image, Image.Image):
            raise TLCoreError(f"A frame must be an image, got {type(image).__name__}.")
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="PNG")
        data = buf.getvalue()
    try:
        return np.array(decode_image(data, SIDE)[0])  # its own, writable copy
    except ImageRejected as e:
        raise TLCoreError(f"That file is not a usable image ({e.reason}).") from None


def _fit(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.nn.Linear:
    """A linear head fitted by multinomial logistic regression (L-BFGS to convergence: a few
    hundred frames take well under a second), standardizing nothing: the body's features as a run's head sees them."""
    head = torch.nn.Linear(x.shape[1], n_classes)
    torch.nn.init.zeros_(head.weight), torch.nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=200, line_search_fn="strong_wolfe")
    weight_decay = 1e-3  # L2, as scikit-learn's default C=1 keeps a separable set from diverging

    def loss():
        opt.zero_grad()
        out = torch.nn.functional.cross_entropy(head(x), y) + weight_decay * head.weight.pow(2).sum() / 2
        out.backward()
        return out

    opt.step(loss)
    return head.eval()
