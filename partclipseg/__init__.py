"""PartCLIPSeg for robots: open-vocabulary part segmentation, its backends and the 3D regions of the parts.

>>> from partclipseg import Weights, open_segmenter
>>> segmenter, _ = open_segmenter(Weights(checkpoint="partclipseg_voc_oracle.pth"))
>>> segmenter.set_queries("pot/handle; grasp:knife")
>>> result = segmenter.segment(rgb)           # result.labels, result.parts

The names below are imported on first use, so ``import partclipseg.queries`` stays light.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Segmenter": "segmenter",
    "Weights": "factory",
    "open_model": "factory",
    "open_backend": "factory",
    "open_segmenter": "factory",
    "load_checkpoint": "checkpoint",
    "save_official": "checkpoint",
    "Backend": "backends",
    "BackendOptions": "backends",
    "make_backend": "backends",
    "PartQuery": "queries",
    "parse_queries": "queries",
    "load_affordances": "affordances",
    "Result": "postprocess",
    "PartResult": "postprocess",
    "CameraIntrinsics": "geometry.camera",
    "GeometrySettings": "geometry.parts",
    "part_geometry": "geometry.parts",
    "affordance_regions": "geometry.regions",
    "AffordanceRegion": "geometry.regions",
    "overlay": "overlay",
    "UserError": "errors",
    "QueryError": "errors",
    "ImageError": "errors",
    "CheckpointError": "errors",
    "BackendUnavailable": "errors",
    "GeometryInputError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'partclipseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
