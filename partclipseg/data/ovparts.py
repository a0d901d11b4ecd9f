"""The OV-PARTS layouts of Pascal-Part-116 and ADE20K-Part-234 (as the official code reads them)::

    PascalPart116/                         ADE20KPart234/
      images/{train,val}/*.jpg               images/{training,validation}/*.jpg
      annotations_detectron2_part/...png     annotations_detectron2_part/{training,validation}/*.png
        8-bit: class id 0..115, 255 none       16-bit: class id 0..233, 65535 none
      annotations_detectron2_obj/...png      ade20k_instance_{train,val}.json
        8-bit: object id 0..19, 255 none       COCO instances (polygons / RLE), categories by name

Splits: Pascal ``train`` / ``val``; ADE ``train`` / ``val``, and ``test`` = the OV-PARTS test set (validation
images plus the unseen-object instances of training images).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .classes import ADE20K_PART_234, PASCAL_PART_116
from .dataset import UNLABELLED, DatasetError, PartDataset, PartSample, list_images, read_image, read_label_map, relabel

PASCAL_IGNORE = 255
ADE_IGNORE = 65535


class PascalPart116(PartDataset):
    classes = PASCAL_PART_116

    def __init__(self, root: str | Path, split: str = "train") -> None:
        self.root = Path(root)
        if split not in ("train", "val"):
            raise DatasetError(f"Pascal-Part-116 splits are 'train' and 'val', got {split!r}")
        self.split = split
        for sub in ("images", "annotations_detectron2_part", "annotations_detectron2_obj"):
            if not (self.root / sub / split).is_dir():
                raise DatasetError(
                    f"{self.root}: {sub}/{split} not found; expected the OV-PARTS PascalPart116 layout "
                    "(images/, annotations_detectron2_part/, annotations_detectron2_obj/)"
                )
        self.images = list_images(self.root / "images" / split)
        self.names = list(self.images)
        self._parts = {PASCAL_IGNORE: UNLABELLED, **{i: i for i in range(len(self.classes.classes))}}
        self._objects = {PASCAL_IGNORE: UNLABELLED, **{i: i for i in range(len(self.classes.objects))}}

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> PartSample:
        stem = self.names[index]
        image = read_image(self.images[stem])
        maps = []
        for sub, mapping in (("annotations_detectron2_part", self._parts), ("annotations_detectron2_obj", self._objects)):
            path = self.root / sub / self.split / f"{stem}.png"
            maps.append(relabel(read_label_map(path, image.shape[:2]), mapping, path))
        return PartSample(stem, image, maps[0], maps[1])


def decode_rle(counts: str | list[int], height: int, width: int) -> np.ndarray:
    """COCO run-length encoding (compressed string or uncompressed list) -> (H, W) bool, column-major runs."""
    if isinstance(counts, str):
        runs: list[int] = []
        pos = 0
        while pos < len(counts):
            value, shift, more = 0, 0, True
            while more:
                chunk = ord(counts[pos]) - 48
                value |= (chunk & 0x1F) << shift
                more = bool(chunk & 0x20)
                pos += 1
                shift += 5
                if not more and chunk & 0x10:
                    value |= -1 << shift
            if len(runs) > 2:
                value += runs[-2]
            runs.append(value)
    else:
        runs = list(counts)
    flat = np.zeros(height * width, dtype=bool)
    start = 0
    for i, run in enumerate(runs):
        if i % 2:
            flat[start:start + run] = True
        start += run
    if start != height * width:
        raise DatasetError(f"RLE covers {start} pixels, the image has {height * width}")
    return flat.reshape(width, height).T


def _instance_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    if isinstance(segmentation, dict):
        size = segmentation.get("size", [height, width])
        return decode_rle(segmentation["counts"], int(size[0]), int(size[1]))
    mask = np.zeros((height, width), dtype=np.uint8)
    polygons = [np.round(np.asarray(p, dtype=np.float64).reshape(-1, 2)).astype(np.int32) for p in segmentation]
    cv2.fillPoly(mask, [p for p in polygons if len(p) >= 3], 1)
    return mask.astype(bool)


class ADE20KPart234(PartDataset):
    classes = ADE20K_PART_234
    _FOLDERS = {"train": ("training", "train"), "val": ("validation", "val")}

    def __init__(self, root: str | Path, split: str = "train") -> None:
        self.root = Path(root)
        if split not in ("train", "val", "test"):
            raise DatasetError(f"ADE20K-Part-234 splits are 'train', 'val' and 'test', got {split!r}")
        self.split = split
        self.items: list[tuple[Path, list[tuple[int, Any]]]] = []  # (image, [(object id, segmentation)])
        for part in (("val", "train") if split == "test" else (split,)):
            self.items += self._load(part, unseen_only=split == "test" and part == "train")
        self.names = [p.stem for p, _ in self.items]
        self._parts = {ADE_IGNORE: UNLABELLED, **{i: i for i in range(len(self.classes.classes))}}

    def _load(self, split: str, unseen_only: bool) -> list[tuple[Path, list[tuple[int, Any]]]]:
        folder, tag = self._FOLDERS[split]
        json_path = self.root / f"ade20k_instance_{tag}.json"
        if not json_path.is_file() or not (self.root / "images" / folder).is_dir():
            raise DatasetError(
                f"{self.root}: expected the OV-PARTS ADE20KPart234 layout (images/{folder}/, "
                f"annotations_detectron2_part/{folder}/, ade20k_instance_{tag}.json)"
            )
        try:
            data = json.loads(json_path.read_text())
            names = {c["id"]: c["name"] for c in data["categories"]}
            images = {im["id"]: im for im in data["images"]}
            annotations = data["annotations"]
        except (ValueError, KeyError, TypeError) as err:
            raise DatasetError(f"{json_path}: not a COCO instance file ({err})") from err
        unknown = sorted(set(names.values()) - set(self.classes.objects))
        if unknown:
            raise DatasetError(f"{json_path}: categories {unknown[:5]} are not ADE20K-Part-234 objects")
        object_id = {cid: self.classes.objects.index(name) for cid, name in names.items()}
        per_image: dict[Any, list[tuple[int, Any]]] = {key: [] for key in images}
        for ann in annotations:
            obj = object_id[ann["category_id"]]
            if unseen_only and self.classes.objects[obj] not in self.classes.unseen:
                continue
            per_image[ann["image_id"]].append((obj, ann["segmentation"]))
        items = []
        for key, image in images.items():
            if unseen_only and not per_image[key]:
                continue
            path = self.root / "images" / folder / Path(image["file_name"]).name
            items.append((path, per_image[key]))
        return items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> PartSample:
        path, instances = self.items[index]
        image = read_image(path)
        height, width = image.shape[:2]
        part_path = Path(str(path).replace("/images/", "/annotations_detectron2_part/")).with_suffix(".png")
        parts = relabel(read_label_map(part_path, (height, width)), self._parts, part_path)
        objects = np.full((height, width), UNLABELLED, dtype=np.int32)
        for obj, segmentation in instances:  # painted in file order: later instances cover earlier ones
            objects[_instance_mask(segmentation, height, width)] = obj
        return PartSample(path.stem, image, parts, objects)


LAYOUTS = {"pascal-part-116": PascalPart116, "ade20k-part-234": ADE20KPart234}
