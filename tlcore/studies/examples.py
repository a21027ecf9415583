"""Labelled examples a user makes in the app: the one store behind the Draw tab's *Teach it*
(drawings, :class:`tlcore.studies.teach.Drawings`) and the Capture tab (camera frames,
:class:`tlcore.studies.capture.Captured`).

Each keeps its examples in the form its model reads (28x28 gray drawings; 224 px colour frames),
with a label each; what differs is how an example is made (a sketch, a frame) and what trains on
them (a short fine-tune with replay; a head on cached features). Both are a dataset at once: a
uint8 tensor with labels, and an ImageFolder zip that loads back.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from ..errors import TLCoreError


@dataclass
class Examples:
    """Images (H, W) gray or (H, W, 3) colour uint8, each with a label."""

    images: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    ZIP_FOLDER: ClassVar[str] = "my-examples"  # the top folder of the zip
    FORMAT: ClassVar[str] = "PNG"  # how each image is saved in it (JPEG for photos)
    NOUN: ClassVar[str] = "examples"  # what the user calls them, in messages

    def append(self, image: np.ndarray, label: str) -> None:
        self.images.append(image)
        self.labels.append(label)

    def remove(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise TLCoreError(f"There is no {self.NOUN[:-1]} {index} (there are {len(self)}).")
        del self.images[index], self.labels[index]

    def clear(self) -> None:
        self.images.clear()
        self.labels.clear()

    def __len__(self) -> int:
        return len(self.images)

    def of(self, label: str) -> list[int]:
        """The indices of ``label``'s examples, in the order they were added."""
        return [i for i, lab in enumerate(self.labels) if lab == label]

    def tensor(self, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, C, H, W) images and int64 labels indexed into ``classes``."""
        unknown = sorted(set(self.labels) - set(classes))
        if unknown:
            raise TLCoreError(f"Your {self.NOUN} are labelled {', '.join(map(repr, unknown))}, which this model does "
                              f"not know (its classes: {', '.join(classes)}). Clear them or pick a model with those "
                              f"classes.")
        x = torch.from_numpy(np.stack(self.images))
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
        return x, torch.tensor([classes.index(label) for label in self.labels], dtype=torch.int64)

    def to_zip(self) -> bytes:
        """An ImageFolder zip, ``<ZIP_FOLDER>/<label>/<label>-<n>.<png|jpg>``; loads back as a dataset."""
        if not self:
            raise TLCoreError(f"There are no {self.NOUN} to download yet.")
        ext = "jpg" if self.FORMAT == "JPEG" else self.FORMAT.lower()
        buf = io.BytesIO()
        # JPEGs do not deflate; PNGs of drawings do, a little.
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED if ext == "jpg" else zipfile.ZIP_DEFLATED) as z:
            for i, (image, label) in enumerate(zip(self.images, self.labels), 1):
                out = io.BytesIO()
                Image.fromarray(image).save(out, format=self.FORMAT, **({"quality": 92} if ext == "jpg" else {}))
                z.writestr(f"{self.ZIP_FOLDER}/{safe_name(label)}/{safe_name(label)}-{i:03d}.{ext}", out.getvalue())
        return buf.getvalue()


def safe_name(label: str) -> str:
    """A class name as a folder name: no separators, no dot-only names."""
    name = "".join(c if c.isalnum() or c in "-_ " else "_" for c in label).strip() or "class"
    return name if name.strip(".") else "class"
