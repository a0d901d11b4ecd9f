"""Part geometry from an aligned depth image: a part's 3D points (depth outliers along the ray removed), centroid,
principal axis, grasp pose, extent and confidence, in the camera optical frame (docs/geometry.md, "What is computed,
per part"). Inputs that cannot be combined or are implausible raise :class:`GeometryInputError` (per frame); a part
without enough usable depth, or whose region is implausible (plausibility.py), gives :class:`NoGeometry` with the
reason (per part)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import GeometryInputError
from .rotations import grasp_frame, quaternion_from_matrix
from .camera import CameraIntrinsics
from .plausibility import (INCONSISTENT, IMPLAUSIBLE, NO_DEPTH, TOO_SMALL, byte_order_problem, describe_unusable,
                           intrinsics_problem, region_problem, usable_depth)
from ..defaults import (
    AXIS_HINT,
    CONFIDENCE_HALF_POINTS,
    DEPTH_LIMITS,
    DEPTH_MAX,
    DEPTH_MIN,
    DEPTH_SCALE_16UC1,
    DEPTH_SCALE_32FC1,
    MAX_PART_EXTENT,
    MIN_GEOMETRY_POINTS,
    OUTLIER_MADS,
    OUTLIER_MIN_BAND,
    OUTLIER_SAMPLES,
)

_DEPTH_SCALES = {np.dtype(np.uint16): DEPTH_SCALE_16UC1, np.dtype(np.float32): DEPTH_SCALE_32FC1,
                 np.dtype(np.float64): DEPTH_SCALE_32FC1}
_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution -> its standard deviation



@dataclass(frozen=True)
class GeometrySettings:
    outlier_mads: float = OUTLIER_MADS
    outlier_min_band: float = OUTLIER_MIN_BAND  # metres
    min_points: int = MIN_GEOMETRY_POINTS
    confidence_half_points: float = CONFIDENCE_HALF_POINTS
    axis_hint: tuple[float, float, float] = AXIS_HINT
    depth_min: float = DEPTH_MIN  # metres: depth outside [depth_min, depth_max] is not used
    depth_max: float = DEPTH_MAX
    max_part_extent: float = MAX_PART_EXTENT  # metres: larger regions are refused

    def __post_init__(self) -> None:
        if not self.outlier_mads > 0 or not self.outlier_min_band >= 0:
            raise ValueError("outlier_mads must be > 0 and outlier_min_band >= 0")
        low, high = DEPTH_LIMITS
        if not low <= self.depth_min < self.depth_max <= high:
            raise ValueError(f"depth_min and depth_max must satisfy {low:g} <= depth_min < depth_max <= {high:g} "
                             f"(metres), got {self.depth_min!r} and {self.depth_max!r}")
        if not self.max_part_extent > 0:
            raise ValueError(f"max_part_extent must be > 0 (metres), got {self.max_part_extent!r}")
        if self.min_points < 3:
            raise ValueError(f"min_points must be at least 3 (a plane), got {self.min_points}")
        if not self.confidence_half_points > 0:
            raise ValueError("confidence_half_points must be > 0")
        hint = np.asarray(self.axis_hint, dtype=np.float64)
        if hint.shape != (3,) or not np.all(np.isfinite(hint)) or not np.linalg.norm(hint) > 0:
            raise ValueError(f"axis_hint must be a non-zero 3-vector, got {self.axis_hint!r}")


@dataclass(frozen=True, eq=False)
class PartGeometry:
    """One part's 3D region in the camera optical frame (see the module docstring for what each field means)."""

    points: np.ndarray  # (N, 3) float32 metres, the inliers
    centroid: np.ndarray  # (3,) metres: the pose position
    rotation: np.ndarray  # (3, 3) columns = pose x, y, z axes
    quaternion: np.ndarray  # (4,) x, y, z, w of ``rotation`` (w >= 0)
    extent: np.ndarray  # (3,) metres along pose x, y, z
    confidence: float
    mask_pixels: int
    valid_pixels: int  # mask pixels with valid depth, before the outlier test

    @property
    def point_count(self) -> int:
        return int(self.points.shape[0])

    @property
    def axis(self) -> np.ndarray:
        """The principal axis (pose z)."""
        return self.rotation[:, 2]


@dataclass(frozen=True)
class NoGeometry:
    """Why a part has no 3D region this frame; ``kind`` is one of plausibility.py's kinds."""

    reason: str
    mask_pixels: int
    valid_pixels: int
    kind: str = NO_DEPTH


def default_depth_scale(depth: np.ndarray) -> float:
    """Metres per unit for a depth image's dtype: 0.001 for 16UC1 (uint16 mm), 1 for 32FC1 (float32 m)."""
    try:
        return _DEPTH_SCALES[np.asarray(depth).dtype]
    except KeyError:
        raise GeometryInputError(
            f"depth image of type {np.asarray(depth).dtype} is not supported: publish 16UC1 (uint16, millimetres) "
            "or 32FC1 (float32, metres)"
        ) from None


def check_depth(depth: np.ndarray, intrinsics: CameraIntrinsics | None, shape: tuple[int, int],
                depth_scale: float | None = None, settings: GeometrySettings = GeometrySettings()) -> float:
    """Check that ``depth`` and ``intrinsics`` fit an image of ``shape`` = (height, width) and are plausible (a
    pinhole camera, depth in its byte order); returns the depth scale.

    Raises :class:`GeometryInputError` with what was wrong and what to do.
    """
    if intrinsics is None:
        raise GeometryInputError("no camera_info for this image yet: 3D needs the intrinsics of the depth image "
                                 "(subscribe the camera_info published with it)")
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise GeometryInputError(f"depth must be a single-channel image, got shape {depth.shape}")
    scale = default_depth_scale(depth)  # also the dtype check
    if depth_scale is not None:
        try:
            scale = float(depth_scale)
        except (TypeError, ValueError):
            scale = math.nan
        if not (math.isfinite(scale) and scale > 0):
            raise GeometryInputError(f"depth_scale must be a positive number of metres per unit, got {depth_scale!r}")
    if tuple(depth.shape) != tuple(shape):
        raise GeometryInputError(
            f"depth is {depth.shape[1]}x{depth.shape[0]} but the image is {shape[1]}x{shape[0]}: use a depth image "
            "registered to the colour image (e.g. aligned_depth_to_color)"
        )
    if intrinsics.size != tuple(shape):
        raise GeometryInputError(
            f"camera_info is for {intrinsics.width}x{intrinsics.height} but the image is {shape[1]}x{shape[0]}: "
            "use the camera_info published with the image the depth is aligned to"
        )
    problem = intrinsics_problem(intrinsics)
    if problem:
        raise GeometryInputError(f"the camera intrinsics are not a plausible pinhole camera: {problem}")
    problem = byte_order_problem(depth, scale, settings.depth_min, settings.depth_max)
    if problem:
        raise GeometryInputError(problem)
    return scale


def part_geometry(mask: np.ndarray, depth: np.ndarray, intrinsics: CameraIntrinsics | None,
                  depth_scale: float | None = None,
                  settings: GeometrySettings = GeometrySettings()) -> PartGeometry | NoGeometry:
    """The 3D region of one part from its (H, W) mask (bool, or nonzero = part)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise GeometryInputError(f"a mask must be a 2D image, got shape {mask.shape}")
    scale = check_depth(depth, intrinsics, mask.shape, depth_scale, settings)
    pixels = np.flatnonzero(mask)
    return _geometry(pixels, np.asarray(depth).reshape(-1), scale, intrinsics, settings)


def label_geometries(labels: np.ndarray, count: int, depth: np.ndarray, intrinsics: CameraIntrinsics | None,
                     depth_scale: float | None = None,
                     settings: GeometrySettings = GeometrySettings()) -> list[PartGeometry | NoGeometry]:
    """Every part of a label image at once (value ``i + 1`` = part ``i``, 0 = none): ``count`` results in order.

    One pass over the image (a stable radix sort of the labelled pixels), then the per-part work.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise GeometryInputError(f"labels must be a 2D integer image, got {labels.dtype} of shape {labels.shape}")
    scale = check_depth(depth, intrinsics, labels.shape, depth_scale, settings)
    flat_labels = labels.reshape(-1)
    pixels = np.flatnonzero(flat_labels)
    values = flat_labels[pixels]
    order = np.argsort(values, kind="stable")
    pixels, values = pixels[order], values[order]
    bounds = np.searchsorted(values, np.arange(1, count + 2))
    flat_depth = np.asarray(depth).reshape(-1)
    return [_geometry(pixels[bounds[i]:bounds[i + 1]], flat_depth, scale, intrinsics, settings) for i in range(count)]


def _geometry(pixels: np.ndarray, flat_depth: np.ndarray, scale: float, intrinsics: CameraIntrinsics,
              settings: GeometrySettings) -> PartGeometry | NoGeometry:
    """The per-part work on the flat indices of its pixels."""
    mask_pixels = int(pixels.size)
    if mask_pixels == 0:
        return NoGeometry("empty mask: the part was not found in this frame", 0, 0, TOO_SMALL)
    if mask_pixels < settings.min_points:
        return NoGeometry(f"its mask has {mask_pixels} pixels; a pose needs at least {settings.min_points}",
                          mask_pixels, 0, TOO_SMALL)
    raw = flat_depth[pixels]
    valid = usable_depth(raw, scale, settings.depth_min, settings.depth_max)
    pixels, z = pixels[valid], raw[valid].astype(np.float64) * scale
    valid_pixels = int(z.size)
    if valid_pixels < settings.min_points:
        return NoGeometry(
            f"{valid_pixels} of its {mask_pixels} pixels have usable depth, at least {settings.min_points} are "
            f"needed ({describe_unusable(raw[~valid], scale, settings.depth_min, settings.depth_max)})",
            mask_pixels, valid_pixels,
        )
    # the median and MAD from at most OUTLIER_SAMPLES evenly strided points: plenty for a band, and O(N) overall
    sample = z[:: max(1, z.size // OUTLIER_SAMPLES)]
    median = float(np.median(sample))
    mad = float(np.median(np.abs(sample - median)))
    band = max(settings.outlier_mads * _MAD_TO_SIGMA * mad, settings.outlier_min_band)
    inlier = np.abs(z - median) <= band
    if not inlier.all():
        pixels, z = pixels[inlier], z[inlier]
    n = int(z.size)
    if n < settings.min_points:
        return NoGeometry(f"only {n} points left after the depth outlier test (of {valid_pixels} with depth)",
                          mask_pixels, valid_pixels, INCONSISTENT)
    # back-projection (x = (u - cx) z / fx, y = (v - cy) z / fy) into separate columns: every step below is a
    # single-threaded elementwise pass, which stays fast on a busy CPU where a threaded BLAS call can stall
    rows, cols = np.divmod(pixels, intrinsics.width)
    columns = ((cols - intrinsics.cx) * (z / intrinsics.fx), (rows - intrinsics.cy) * (z / intrinsics.fy), z)
    centroid = np.array([c.mean() for c in columns])
    centred = [c - m for c, m in zip(columns, centroid)]
    covariance = np.array([[np.einsum("i,i->", a, b) for b in centred] for a in centred])
    _, vectors = np.linalg.eigh(covariance)
    rotation = grasp_frame(centroid, vectors[:, 2], settings.axis_hint)
    extent = np.empty(3)
    for k in range(3):
        along = rotation[0, k] * centred[0] + rotation[1, k] * centred[1] + rotation[2, k] * centred[2]
        extent[k] = along.max() - along.min()
    problem = region_problem(centroid, extent, settings.depth_min, settings.depth_max, settings.max_part_extent)
    if problem:
        return NoGeometry(problem, mask_pixels, valid_pixels, IMPLAUSIBLE)
    points = np.empty((n, 3), dtype=np.float32)
    for k in range(3):
        points[:, k] = columns[k]
    confidence = n / (n + settings.confidence_half_points) * (valid_pixels / mask_pixels) * (n / valid_pixels)
    return PartGeometry(
        points=points,
        centroid=centroid,
        rotation=rotation,
        quaternion=quaternion_from_matrix(rotation),
        extent=extent,
        confidence=float(confidence),
        mask_pixels=mask_pixels,
        valid_pixels=valid_pixels,
    )

