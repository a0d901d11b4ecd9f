"""Plausibility: what may become a 3D region that a robot acts on (docs/geometry.md, "Plausibility").

Before the geometry: which depth values are measurements (:func:`usable_depth`: not 0, NaN/inf, negative,
subnormal, 16-bit saturated, nor outside [depth_min, depth_max]), whether a depth image reads right in its byte
order (:func:`byte_order_problem`), whether intrinsics describe a real pinhole camera (:func:`intrinsics_problem`;
:func:`camera_info_intrinsics` for the fields of a camera_info). After it: whether a part's region is one a gripper
can act on (:func:`region_problem`). Every problem is one sentence: what was wrong and what to check.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..defaults import BYTE_ORDER_SAMPLES, DISTORTION_LENGTHS, FIELD_OF_VIEW_DEG, SATURATED_16UC1
from ..errors import CameraError
from .camera import CameraIntrinsics

# Why a part found in 2D has no 3D region (NoGeometry.kind, SkippedPart.kind). The quiet ones are normal outcomes
# (nothing to warn about); the others mean the inputs or the mask cannot be trusted for this part.
TOO_SMALL = "too small"  # the mask has fewer pixels than a pose needs
UNKNOWN_QUERY = "unknown query"  # a closed-vocabulary model was never trained on the query (warned per query set)
NO_DEPTH = "no usable depth"
INCONSISTENT = "inconsistent depth"
IMPLAUSIBLE = "implausible region"
QUIET_KINDS = (TOO_SMALL, UNKNOWN_QUERY)


def _range_in_units(scale: float, depth_min: float, depth_max: float) -> tuple[float, float]:
    return depth_min / scale, depth_max / scale


def usable_depth(raw: np.ndarray, scale: float, depth_min: float, depth_max: float) -> np.ndarray:
    """Boolean mask of the depth values that are measurements within [depth_min, depth_max] metres.

    ``raw`` holds depth units (uint16 or float), ``scale`` metres per unit. NaN fails every comparison; 0,
    negative and subnormal values lie below any ``depth_min`` > 0; the 16-bit saturation value is excluded too.
    """
    low, high = _range_in_units(scale, depth_min, depth_max)
    valid = (raw >= low) & (raw <= high)
    if raw.dtype == np.uint16:
        valid &= raw != SATURATED_16UC1
    return valid


def describe_unusable(raw: np.ndarray, scale: float, depth_min: float, depth_max: float) -> str:
    """What the unusable values of ``raw`` are (counts per kind) and what to check, for the largest kind."""
    low, high = _range_in_units(scale, depth_min, depth_max)
    kinds: dict[str, int] = {}
    if raw.dtype.kind == "f":
        finite = np.isfinite(raw)
        tiny = np.finfo(raw.dtype).tiny
        kinds["NaN or infinite"] = int((~finite).sum())
        kinds["zero (no depth)"] = int((raw == 0).sum())
        kinds["negative"] = int((finite & (raw < 0)).sum())
        kinds["subnormal"] = int(((raw > 0) & (raw < tiny)).sum())
        kinds[f"nearer than depth_min {depth_min:g} m"] = int(((raw >= tiny) & (raw < low)).sum())
        kinds[f"farther than depth_max {depth_max:g} m"] = int((finite & (raw > high)).sum())
    else:
        saturated = raw == SATURATED_16UC1 if raw.dtype == np.uint16 else np.zeros(raw.shape, dtype=bool)
        kinds["zero (no depth)"] = int((raw == 0).sum())
        kinds[f"{SATURATED_16UC1} (saturated or invalid)"] = int(saturated.sum())
        kinds[f"nearer than depth_min {depth_min:g} m"] = int(((raw > 0) & (raw < low)).sum())
        kinds[f"farther than depth_max {depth_max:g} m"] = int(((raw > high) & ~saturated).sum())
    present = {k: n for k, n in kinds.items() if n}
    if not present:
        return "none unusable"
    largest = max(present, key=present.get)
    if largest.startswith(("NaN", "zero")):
        hint = "no depth there: too near, too far, shadowed, or a shiny or transparent surface"
    elif largest.startswith(("negative", "subnormal")):
        hint = ("these are not depths: check the depth encoding (16UC1 millimetres, 32FC1 metres) and its byte "
                "order (is_bigendian)")
    elif largest.startswith(str(SATURATED_16UC1)):
        hint = "the sensor marks these pixels invalid (saturated, out of its range)"
    else:
        hint = ("check depth_scale and the encoding (16UC1 = millimetres, 32FC1 = metres); widen depth_min / "
                "depth_max only if the part really is there")
    listed = ", ".join(f"{n} {k}" for k, n in present.items())
    return f"unusable: {listed}; {hint}"


def byte_order_problem(depth: np.ndarray, scale: float, depth_min: float, depth_max: float) -> str | None:
    """A problem if ``depth`` is plausible far more often with its bytes swapped (a wrong ``is_bigendian``)."""
    if depth.dtype.itemsize == 1 or depth.size == 0:
        return None
    flat = depth.reshape(-1)
    sample = flat[:: max(1, flat.size // BYTE_ORDER_SAMPLES)]
    as_sent = float(usable_depth(sample, scale, depth_min, depth_max).mean())
    swapped = float(usable_depth(sample.byteswap(), scale, depth_min, depth_max).mean())
    if swapped >= 0.25 and as_sent < swapped / 4:
        return (f"the depth image reads as depth only with its bytes swapped ({as_sent:.0%} of its values lie within "
                f"depth_min..depth_max as sent, {swapped:.0%} swapped): its byte order flag (is_bigendian) does not "
                "match its data; fix the publisher")
    return None


def field_of_view_deg(size_px: float, focal_px: float) -> float:
    """Full field of view of ``size_px`` pixels at focal length ``focal_px`` (pixels)."""
    return math.degrees(2 * math.atan(size_px / (2 * focal_px)))


def intrinsics_problem(k: CameraIntrinsics) -> str | None:
    """A problem if ``k`` is not a plausible pinhole camera: field of view outside FIELD_OF_VIEW_DEG on either
    axis, or the principal point outside the image."""
    low, high = FIELD_OF_VIEW_DEG
    for axis, size, focal in (("horizontal", k.width, k.fx), ("vertical", k.height, k.fy)):
        fov = field_of_view_deg(size, focal)
        if not low <= fov <= high:
            return (f"its {axis} field of view is {fov:.4g} degrees ({'fx' if axis == 'horizontal' else 'fy'} = "
                    f"{focal:.4g} px over {size} px), outside {low:g}-{high:g}: K must hold the focal length in "
                    "pixels of this image; check the calibration")
    for name, value, size in (("cx", k.cx, k.width), ("cy", k.cy, k.height)):
        if not -0.5 <= value <= size - 0.5:
            return (f"its principal point {name} = {value:.6g} px lies outside the {size}-pixel image: check the "
                    "calibration (K[2], K[5])")
    return None


def camera_info_intrinsics(k: Sequence[float], width: int, height: int, d: Sequence[float] = (),
                           distortion_model: str = "", binning_x: int = 0, binning_y: int = 0,
                           roi: tuple[int, int, int, int] = (0, 0, 0, 0)) -> CameraIntrinsics:
    """The intrinsics of the image a camera_info describes, from its fields, or :class:`CameraError` saying what
    is wrong.

    ``roi`` = (x_offset, y_offset, width, height), all 0 = the whole image. Binning and ROI are understood as
    sensor_msgs/CameraInfo defines them: K is of the full-resolution ``width`` x ``height`` calibration, the image
    is its ROI binned ``binning_x`` x ``binning_y`` (0 or 1 = none). The distortion is not applied (images must
    be rectified), but ``d`` must fit ``distortion_model``.
    """
    values = np.asarray(k, dtype=np.float64).reshape(-1)
    if values.size != 9 or not np.all(np.isfinite(values)):
        raise CameraError(f"K must be 9 finite numbers (row-major 3x3), got {values.size} values"
                          + ("" if values.size != 9 else " with NaN or infinity"))
    full = CameraIntrinsics(fx=float(values[0]), fy=float(values[4]), cx=float(values[2]), cy=float(values[5]),
                            width=int(width), height=int(height))
    if abs(values[8] - 1.0) > 1e-6 or np.any(np.abs(values[[3, 6, 7]]) > 1e-9):
        raise CameraError(f"K's last row must be (0, 0, 1), got ({values[6]:g}, {values[7]:g}, {values[8]:g}) and "
                          f"K[3] = {values[3]:g}: a pinhole K is [fx 0 cx; 0 fy cy; 0 0 1]")
    if abs(values[1]) > 1e-6 * full.fx:
        raise CameraError(f"K has a skew of {values[1]:g} (K[1]); skewed pixels are not supported")
    _check_distortion(d, distortion_model)
    problem = intrinsics_problem(full)
    if problem:
        raise CameraError(f"the camera_info is not a plausible pinhole camera: {problem}")
    return _binned(full, binning_x, binning_y, roi)


def _check_distortion(d: Sequence[float], model: str) -> None:
    coefficients = np.asarray(d, dtype=np.float64).reshape(-1)
    if coefficients.size == 0:
        return
    if model not in DISTORTION_LENGTHS:
        known = ", ".join(f"{m} ({n})" for m, n in DISTORTION_LENGTHS.items())
        raise CameraError(f"unknown distortion_model {model[:40]!r} with {coefficients.size} coefficients; "
                          f"known: {known}")
    if coefficients.size != DISTORTION_LENGTHS[model]:
        raise CameraError(f"distortion_model {model} has {DISTORTION_LENGTHS[model]} coefficients, but D has "
                          f"{coefficients.size}")
    if not np.all(np.isfinite(coefficients)):
        raise CameraError("D holds NaN or infinity")


def _binned(full: CameraIntrinsics, binning_x: int, binning_y: int,
            roi: tuple[int, int, int, int]) -> CameraIntrinsics:
    """The intrinsics of ``roi`` of ``full``, binned; pixel centres stay pixel centres (as CameraIntrinsics.scaled)."""
    x, y, roi_width, roi_height = (int(v) for v in roi)
    if (x, y, roi_width, roi_height) == (0, 0, 0, 0):
        roi_width, roi_height = full.width, full.height
    elif roi_width < 1 or roi_height < 1 or x + roi_width > full.width or y + roi_height > full.height:
        raise CameraError(f"the ROI (x {x}, y {y}, {roi_width}x{roi_height}) does not lie inside the "
                          f"{full.width}x{full.height} calibration")
    bx, by = max(1, int(binning_x)), max(1, int(binning_y))
    if roi_width // bx < 1 or roi_height // by < 1:
        raise CameraError(f"binning {binning_x}x{binning_y} leaves no pixel of the {roi_width}x{roi_height} image")
    if (bx, by, roi_width, roi_height) == (1, 1, full.width, full.height):
        return full
    return CameraIntrinsics(fx=full.fx / bx, fy=full.fy / by, cx=(full.cx - x + 0.5) / bx - 0.5,
                            cy=(full.cy - y + 0.5) / by - 0.5, width=roi_width // bx, height=roi_height // by)


def region_problem(centroid: np.ndarray, extent: np.ndarray, depth_min: float, depth_max: float,
                   max_part_extent: float) -> str | None:
    """A problem if a part's region is not one a gripper can act on: non-finite, its centroid outside the depth
    range, or larger than ``max_part_extent`` on any side."""
    if not (np.all(np.isfinite(centroid)) and np.all(np.isfinite(extent))):
        return "the region has non-finite coordinates: check the camera_info and the depth encoding"
    if not depth_min <= centroid[2] <= depth_max:
        return (f"its centroid is {centroid[2]:.3g} m away, outside depth_min..depth_max "
                f"({depth_min:g}-{depth_max:g} m)")
    if float(np.max(extent)) > max_part_extent:
        size = " x ".join(f"{e:.2f}" for e in extent)
        return (f"it is {size} m, larger than max_part_extent {max_part_extent:g} m: the mask spills over the scene "
                "(check the segmentation; raise max_part_extent only for parts that large)")
    return None
