"""Part datasets: the OV-PARTS layouts, the simple folder format, and the synthetic kitchen generator."""
from __future__ import annotations

from pathlib import Path

from .classes import ADE20K_PART_234, PASCAL_PART_116, ClassSet
from .dataset import UNLABELLED, DatasetError, PartDataset, PartSample
from .folder import FolderDataset, is_folder_dataset
from .ovparts import LAYOUTS as _OVPARTS, ADE20KPart234, PascalPart116

LAYOUTS = ("auto", "folder", *_OVPARTS)


def detect_layout(root: Path) -> str:
    """Which layout the folder holds (raises DatasetError listing what was looked for)."""
    if is_folder_dataset(root):
        return "folder"
    if (root / "annotations_detectron2_obj").is_dir():
        return "pascal-part-116"
    if any((root / f"ade20k_instance_{tag}.json").is_file() for tag in ("train", "val")):
        return "ade20k-part-234"
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    raise DatasetError(
        f"{root}: not a dataset folder: expected classes.txt (folder format), annotations_detectron2_obj/ "
        "(Pascal-Part-116) or ade20k_instance_*.json (ADE20K-Part-234); see docs/training.md"
    )


def open_dataset(root: str | Path, split: str, layout: str = "auto") -> PartDataset:
    """One split of the dataset at ``root`` in ``layout`` ("auto" detects it)."""
    root = Path(root)
    if layout not in LAYOUTS:
        raise DatasetError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "folder":
        return FolderDataset(root, split)
    return _OVPARTS[layout](root, split)


__all__ = [
    "ADE20K_PART_234", "ADE20KPart234", "ClassSet", "DatasetError", "FolderDataset", "LAYOUTS", "PASCAL_PART_116",
    "PartDataset", "PartSample", "PascalPart116", "UNLABELLED", "detect_layout", "open_dataset",
]
