"""Pinhole camera intrinsics, as ``sensor_msgs/CameraInfo`` gives them (``K``, ``width``, ``height``).

Conventions (ROS REP-103 optical frame, OpenCV pixel coordinates):

* camera optical frame: x right, y down, z forward (along the optical axis), metres;
* pixel ``(u, v)`` = (column, row); integer coordinates are pixel *centres*, so the ray through the centre of
  pixel ``(u, v)`` is ``((u - cx) / fx, (v - cy) / fy, 1)``;
* depth is the z coordinate of a point (what depth cameras publish), not its distance from the camera.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import CameraError



@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels (no distortion: rectified images)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise CameraError(
                f"camera intrinsics need finite fx, fy > 0 and finite cx, cy; got fx={self.fx}, fy={self.fy}, "
                f"cx={self.cx}, cy={self.cy} (is the camera calibrated? camera_info.k must not be all zero)"
            )
        if int(self.width) != self.width or int(self.height) != self.height or self.width < 1 or self.height < 1:
            raise CameraError(f"image size must be positive integers, got {self.width}x{self.height}")

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> "CameraIntrinsics":
        """From the row-major 3x3 matrix ``K`` of a camera_info (9 numbers)."""
        k = np.asarray(k, dtype=np.float64).reshape(-1)
        if k.size != 9:
            raise CameraError(f"K must have 9 elements (row-major 3x3), got {k.size}")
        return cls(fx=float(k[0]), fy=float(k[4]), cx=float(k[2]), cy=float(k[5]), width=int(width),
                   height=int(height))

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float) -> "CameraIntrinsics":
        """Square pixels, principal point at the image centre, ``fov_deg`` = horizontal field of view."""
        if not 0 < fov_deg < 180:
            raise CameraError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
        f = (width / 2) / math.tan(math.radians(fov_deg) / 2)
        return cls(fx=f, fy=f, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width), the shape of an image from this camera."""
        return (self.height, self.width)

    def as_matrix(self) -> np.ndarray:
        """3x3 ``K``."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, factor: float) -> "CameraIntrinsics":
        """The same camera with its image resized by ``factor`` (pixel centres stay pixel centres)."""
        width, height = round(self.width * factor), round(self.height * factor)
        return CameraIntrinsics(
            fx=self.fx * factor, fy=self.fy * factor,
            cx=(self.cx + 0.5) * factor - 0.5, cy=(self.cy + 0.5) * factor - 0.5, width=width, height=height,
        )

    def rays(self) -> np.ndarray:
        """(H, W, 3) float64 ray through each pixel centre, scaled so that z = 1 (a point at depth d is d * ray)."""
        u = (np.arange(self.width) - self.cx) / self.fx
        v = (np.arange(self.height) - self.cy) / self.fy
        out = np.empty((self.height, self.width, 3))
        out[..., 0] = u[None, :]
        out[..., 1] = v[:, None]
        out[..., 2] = 1.0
        return out

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) pixel coordinates (u, v) of (N, 3) points in front of the camera (z > 0)."""
        points = np.asarray(points, dtype=np.float64)
        z = points[:, 2]
        return np.stack([self.fx * points[:, 0] / z + self.cx, self.fy * points[:, 1] / z + self.cy], axis=1)


def disparity_to_depth(disparity: np.ndarray, focal_px: float, baseline_m: float, doffs_px: float = 0.0) -> np.ndarray:
    """Depth (float32 metres, 0 = unknown) of a rectified stereo pair: ``z = f * baseline / (d + doffs)``.

    ``doffs`` is the difference of the two cameras' principal points (``cx_right - cx_left``, Middlebury's
    ``doffs``); non-finite disparities and ``d + doffs <= 0`` give 0.
    """
    d = np.asarray(disparity, dtype=np.float64) + doffs_px
    ok = np.isfinite(d) & (d > 0)
    return np.where(ok, focal_px * baseline_m / np.where(ok, d, 1.0), 0.0).astype(np.float32)
