"""One frame's affordance regions: a segmentation result plus depth -> one 3D region per part found.

This is what the ROS node publishes as ``AffordanceArray``; each :class:`AffordanceRegion` maps field by field
onto ``AffordanceRegion.msg`` (query, object, part, affordance, pose, extent, score, point_count, points).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from .camera import CameraIntrinsics
from .cloud import PackedCloud, pack_xyz
from .parts import GeometrySettings, NoGeometry, PartGeometry, label_geometries
from ..queries import PartQuery


class ScoredPart(Protocol):
    """What a region needs of a segmented part (:class:`~partclipseg.postprocess.PartResult` fits)."""

    query: PartQuery
    score: float


@dataclass(frozen=True, eq=False)
class AffordanceRegion:
    query: PartQuery
    geometry: PartGeometry
    segmentation_score: float  # mean probability of the part's pixels

    @property
    def affordance(self) -> str:
        """The query's affordance, "" when it has none (or no vocabulary was used)."""
        return self.query.affordance or ""

    @property
    def score(self) -> float:
        """How far to trust the region: segmentation score times geometry confidence."""
        return float(self.segmentation_score * self.geometry.confidence)

    def cloud(self) -> PackedCloud:
        """The part's points as PointCloud2 fields."""
        return pack_xyz(self.geometry.points)


@dataclass(frozen=True)
class SkippedPart:
    """A part found in 2D without a 3D region this frame, and why."""

    query: PartQuery
    reason: str


def affordance_regions(parts: Sequence[ScoredPart], labels: np.ndarray, depth: np.ndarray,
                       intrinsics: CameraIntrinsics | None, depth_scale: float | None = None,
                       settings: GeometrySettings = GeometrySettings(),
                       ) -> tuple[list[AffordanceRegion], list[SkippedPart]]:
    """Regions of the parts of a label image (value ``i + 1`` = ``parts[i]``), in query order.

    Parts absent from the label image are left out silently; parts present without enough depth are returned as
    :class:`SkippedPart`. Raises :class:`~partclipseg.geometry.parts.GeometryInputError` when depth, labels and
    intrinsics do not fit together (one warning per frame, then 2D only).
    """
    regions: list[AffordanceRegion] = []
    skipped: list[SkippedPart] = []
    for part, geometry in zip(parts, label_geometries(labels, len(parts), depth, intrinsics, depth_scale, settings)):
        if isinstance(geometry, NoGeometry):
            if geometry.mask_pixels:
                skipped.append(SkippedPart(part.query, geometry.reason))
        else:
            regions.append(AffordanceRegion(part.query, geometry, float(part.score)))
    return regions, skipped
