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
from .plausibility import UNKNOWN_QUERY
from ..queries import PartQuery


class ScoredPart(Protocol):
    """What a region needs of a segmented part (:class:`~partclipseg.postprocess.PartResult` fits); an
    ``unknown_query`` attribute, when true, says a closed-vocabulary model was never trained on the query."""

    query: PartQuery
    score: float


@dataclass(frozen=True, eq=False)
class AffordanceRegion:
    query: PartQuery
    geometry: PartGeometry
    segmentation_score: float  # mean probability of the part's pixels
    unknown_query: bool = False  # published only with allow_unknown: the model was never trained on the query

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
    """A part found in 2D without a 3D region this frame, why, and the kind of reason (plausibility.py's kinds:
    the quiet ones are normal outcomes, the others mean its inputs or mask cannot be trusted)."""

    query: PartQuery
    reason: str
    kind: str


def affordance_regions(parts: Sequence[ScoredPart], labels: np.ndarray, depth: np.ndarray,
                       intrinsics: CameraIntrinsics | None, depth_scale: float | None = None,
                       settings: GeometrySettings = GeometrySettings(), allow_unknown: bool = False,
                       ) -> tuple[list[AffordanceRegion], list[SkippedPart]]:
    """Regions of the parts of a label image (value ``i + 1`` = ``parts[i]``), in query order.

    Parts absent from the label image are left out silently; parts present without enough usable depth, with an
    implausible region, or (unless ``allow_unknown``) of a query that a closed-vocabulary model was never trained
    on are returned as :class:`SkippedPart`. Raises :class:`~partclipseg.geometry.parts.GeometryInputError` when
    depth, labels and intrinsics do not fit together or are implausible (one warning per frame, then 2D only).
    """
    regions: list[AffordanceRegion] = []
    skipped: list[SkippedPart] = []
    for part, geometry in zip(parts, label_geometries(labels, len(parts), depth, intrinsics, depth_scale, settings)):
        unknown = bool(getattr(part, "unknown_query", False))
        if not geometry.mask_pixels:
            continue
        if unknown and not allow_unknown:
            skipped.append(SkippedPart(part.query, "the model has a closed vocabulary and was never trained on this "
                                       "query: its mask is a guess, so its 3D region is withheld", UNKNOWN_QUERY))
        elif isinstance(geometry, NoGeometry):
            skipped.append(SkippedPart(part.query, geometry.reason, geometry.kind))
        else:
            regions.append(AffordanceRegion(part.query, geometry, float(part.score), unknown))
    return regions, skipped
