"""Rotations: the grasp frame of a part (z along its axis, x towards the camera) and quaternion conversions
(geometry_msgs order x, y, z, w)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..defaults import AXIS_HINT


def grasp_frame(position: np.ndarray, axis: np.ndarray, axis_hint: Sequence[float] = AXIS_HINT) -> np.ndarray:
    """Rotation (columns x, y, z) of the grasp pose at ``position`` (camera frame) whose z follows ``axis``.

    z = ``axis`` signed towards ``axis_hint``; x = towards the camera, orthogonal to z; y = z cross x.
    """
    z = np.asarray(axis, dtype=np.float64)
    z = z / np.linalg.norm(z)
    hint = np.asarray(axis_hint, dtype=np.float64)
    for reference in (hint, np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])):
        side = float(z @ reference)
        if abs(side) > 1e-9:
            if side < 0:
                z = -z
            break
    # towards the camera; if the axis points straight at the camera, any x is "towards it": take image up
    for toward in (-np.asarray(position, dtype=np.float64), np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0])):
        x = toward - (toward @ z) * z
        norm = np.linalg.norm(x)
        if norm > 1e-9 * max(1.0, np.linalg.norm(toward)):
            x /= norm
            break
    return np.column_stack([x, np.cross(z, x), z])


def quaternion_from_matrix(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w >= 0, of a 3x3 rotation matrix (geometry_msgs/Quaternion order)."""
    r = np.asarray(rotation, dtype=np.float64)
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, s / 4]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s]
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = [(r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = [(r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4, (r[1, 0] - r[0, 1]) / s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_from_quaternion(quaternion: Sequence[float]) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (x, y, z, w) (normalised first; the inverse of quaternion_from_matrix)."""
    x, y, z, w = np.asarray(quaternion, dtype=np.float64) / np.linalg.norm(quaternion)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
