"""What every part dataset layout yields: :class:`PartSample` (an image with its part and object label maps, and
depth + intrinsics where the layout has them), behind one small :class:`PartDataset` interface."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError
from ..geometry.camera import CameraIntrinsics
from .classes import ClassSet

UNLABELLED = -1  # label-map value for "no part" (part maps) and "background / no object" (object maps)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")



@dataclass
class PartSample:
    """One annotated image. Label maps use dataset ids: ``parts`` indexes ``ClassSet.classes``, ``objects``
    indexes ``ClassSet.objects``; :data:`UNLABELLED` elsewhere."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    parts: np.ndarray  # (H, W) int32
    objects: np.ndarray  # (H, W) int32
    depth: np.ndarray | None = None  # (H, W) float32 metres, 0 = no measurement
    intrinsics: CameraIntrinsics | None = None  # where the layout has cameras

    def records(self) -> list[int]:
        """Object ids evaluated in this image: one record per object class that has labelled part pixels
        (docs/model.md, "Evaluation protocols": one record per (image, object))."""
        labelled = (self.parts != UNLABELLED) & (self.objects != UNLABELLED)
        return sorted(int(o) for o in np.unique(self.objects[labelled]))


class PartDataset(ABC):
    """A sequence of :class:`PartSample` with the dataset's :class:`ClassSet`."""

    classes: ClassSet
    root: Path
    split: str

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> PartSample: ...

    def describe(self) -> str:
        return f"{self.classes.name} {self.split} ({len(self)} images, {len(self.classes.classes)} classes) at {self.root}"


def read_image(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{path}: cannot read the image (missing, empty or not an image file)")
    return np.ascontiguousarray(image[:, :, ::-1])


def read_label_map(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A single-channel 8- or 16-bit PNG as int32; ``size`` (height, width) must match when given."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise DatasetError(f"{path}: cannot read the label map (missing, empty or not a PNG)")
    if labels.ndim != 2 or labels.dtype not in (np.uint8, np.uint16):
        raise DatasetError(
            f"{path}: a label map must be a single-channel 8- or 16-bit PNG, got shape {labels.shape} {labels.dtype}"
        )
    if size is not None and labels.shape != size:
        raise DatasetError(f"{path}: label map is {labels.shape[1]}x{labels.shape[0]}, its image {size[1]}x{size[0]}")
    return labels.astype(np.int32)


def relabel(labels: np.ndarray, mapping: dict[int, int], path: Path) -> np.ndarray:
    """Map file values to dataset ids (values absent from ``mapping`` are an error naming them)."""
    lookup = np.full(int(labels.max()) + 1, -2, dtype=np.int32)
    for value, label in mapping.items():
        if value < lookup.size:
            lookup[value] = label
    out = lookup[labels]
    if (out == -2).any():
        bad = sorted(int(v) for v in np.unique(labels[out == -2]))[:10]
        raise DatasetError(f"{path}: unexpected label values {bad} (allowed: {sorted(mapping)[:3]}..{max(mapping)})")
    return out


def list_images(folder: Path) -> dict[str, Path]:
    """stem -> image path for every image file directly in ``folder``."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: image folder not found")
    images = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    if not images:
        raise DatasetError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return images
