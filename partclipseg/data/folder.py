"""The simple folder format for a team's own objects (and the synthetic kitchen set)::

    <root>/
      classes.txt          one class per line, "object/part" (e.g. pot/handle); line i is label i (from 1)
      unseen.txt           optional: objects held out of training, one per line (reported as mIoU-unseen)
      <split>/             e.g. train/ and val/
        images/<stem>.png|.jpg
        parts/<stem>.png   8- or 16-bit: 0 = no part label, i = class i of classes.txt
        objects/<stem>.png optional: 0 = background, j = the j-th object of classes.txt (order of first mention);
                           without it, objects are the union of their parts
        depth/<stem>.png   optional: uint16 millimetres, 0 = no measurement
        camera/<stem>.json optional: {"fx", "fy", "cx", "cy", "width", "height"} (pixels)

Any query form the parser accepts works in classes.txt ("pot's handle", "pot handle"); it is normalised.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from ..geometry.camera import CameraIntrinsics
from ..queries import QueryError, parse_query
from .classes import ClassSet
from .dataset import UNLABELLED, DatasetError, PartDataset, PartSample, list_images, read_image, read_label_map, relabel

CLASSES_FILE = "classes.txt"
UNSEEN_FILE = "unseen.txt"
DEPTH_SCALE = 1000.0  # depth PNG units per metre (millimetres, as ROS 16UC1)


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def read_classes(root: Path) -> ClassSet:
    """classes.txt (+ unseen.txt) -> :class:`ClassSet`; objects in order of first mention."""
    path = root / CLASSES_FILE
    if not path.is_file():
        raise DatasetError(f"{root}: no {CLASSES_FILE}; write one class per line as 'object/part', e.g. 'pot/handle'")
    classes = []
    for number, line in enumerate(_lines(path), 1):
        try:
            query = parse_query(line)
        except QueryError as err:
            raise DatasetError(f"{path} line {number}: {err}") from err
        if query.object is None:
            raise DatasetError(f"{path} line {number}: {line!r} names no object; write it as 'object/part'")
        if query in classes:
            raise DatasetError(f"{path} line {number}: {query.name!r} is listed twice")
        classes.append(query)
    if not classes:
        raise DatasetError(f"{path}: no classes; write one class per line as 'object/part'")
    objects = tuple(dict.fromkeys(c.object for c in classes))
    unseen_path = root / UNSEEN_FILE
    unseen = frozenset(_lines(unseen_path)) if unseen_path.is_file() else frozenset()
    try:
        return ClassSet(name=root.name, classes=tuple(classes), objects=objects, unseen=unseen)
    except ValueError as err:
        raise DatasetError(f"{root}: {err}") from err


def write_classes(root: Path, classes: ClassSet) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / CLASSES_FILE).write_text("".join(f"{c.name}\n" for c in classes.classes))
    if classes.unseen:
        (root / UNSEEN_FILE).write_text("".join(f"{o}\n" for o in sorted(classes.unseen)))


def is_folder_dataset(root: Path) -> bool:
    return (root / CLASSES_FILE).is_file()


class FolderDataset(PartDataset):
    """One split of a dataset in the simple folder format."""

    def __init__(self, root: str | Path, split: str = "train") -> None:
        self.root = Path(root)
        self.split = split
        self.classes = read_classes(self.root)
        folder = self.root / split
        if not folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if (p / "images").is_dir())
            raise DatasetError(f"{self.root}: split {split!r} not found (splits here: {found or 'none'})")
        self.images = list_images(folder / "images")
        missing = [s for s in self.images if not (folder / "parts" / f"{s}.png").is_file()]
        if missing:
            raise DatasetError(
                f"{folder / 'parts'}: no part mask for {len(missing)} image(s), e.g. {missing[0]}.png; "
                "every image needs parts/<stem>.png"
            )
        self.names = list(self.images)
        n_classes, n_objects = len(self.classes.classes), len(self.classes.objects)
        object_of = [self.classes.objects.index(c.object) for c in self.classes.classes]
        self._part_values = {0: UNLABELLED, **{i + 1: i for i in range(n_classes)}}
        self._object_values = {0: UNLABELLED, **{j + 1: j for j in range(n_objects)}}
        self._object_of_part = np.asarray([UNLABELLED] + object_of, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> PartSample:
        stem = self.names[index]
        folder = self.root / self.split
        image = read_image(self.images[stem])
        size = image.shape[:2]
        parts_path = folder / "parts" / f"{stem}.png"
        parts = relabel(read_label_map(parts_path, size), self._part_values, parts_path)
        objects_path = folder / "objects" / f"{stem}.png"
        if objects_path.is_file():
            objects = relabel(read_label_map(objects_path, size), self._object_values, objects_path)
        else:
            objects = self._object_of_part[parts + 1]
        depth = None
        depth_path = folder / "depth" / f"{stem}.png"
        if depth_path.is_file():
            raw = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
            if raw is None or raw.dtype != np.uint16 or raw.shape != size:
                raise DatasetError(f"{depth_path}: depth must be a uint16 PNG (millimetres) of the image's size")
            depth = raw.astype(np.float32) / DEPTH_SCALE
        return PartSample(stem, image, parts, objects, depth, self._camera(folder / "camera" / f"{stem}.json"))

    @staticmethod
    def _camera(path: Path) -> CameraIntrinsics | None:
        if not path.is_file():
            return None
        try:
            values = json.loads(path.read_text())
            return CameraIntrinsics(*(float(values[k]) for k in ("fx", "fy", "cx", "cy")),
                                    width=int(values["width"]), height=int(values["height"]))
        except (ValueError, KeyError, TypeError) as err:
            raise DatasetError(f"{path}: camera file needs numbers fx, fy, cx, cy, width, height ({err})") from err


def write_sample(root: Path, split: str, sample: PartSample, jpeg_quality: int = 92) -> None:
    """Write one sample in the folder format (dataset ids -> file values: +1, 0 = none)."""
    folder = Path(root) / split
    for sub in ("images", "parts", "objects", "depth", "camera"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    bgr = np.ascontiguousarray(sample.image[:, :, ::-1])
    cv2.imwrite(str(folder / "images" / f"{sample.name}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    for sub, labels in (("parts", sample.parts), ("objects", sample.objects)):
        dtype = np.uint8 if labels.max() < 255 else np.uint16
        cv2.imwrite(str(folder / sub / f"{sample.name}.png"), (labels + 1).astype(dtype))
    if sample.depth is not None:
        millimetres = np.clip(np.round(sample.depth * DEPTH_SCALE), 0, 65535).astype(np.uint16)
        cv2.imwrite(str(folder / "depth" / f"{sample.name}.png"), millimetres)
    if sample.intrinsics is not None:
        (folder / "camera" / f"{sample.name}.json").write_text(json.dumps(asdict(sample.intrinsics)) + "\n")
