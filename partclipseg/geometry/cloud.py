"""Point clouds as ``sensor_msgs/PointCloud2`` lays them out, without ROS: the ROS layer only copies the fields.

:func:`pack_xyz` gives the standard unorganised xyz cloud (``x``, ``y``, ``z`` FLOAT32 at offsets 0, 4, 8,
``point_step`` 12, ``height`` 1, little-endian, dense); :func:`pack_labelled` adds ``label`` (UINT32 at 12) and
``score`` (FLOAT32 at 16), ``point_step`` 20: a labelled part cloud for cloud-based grasp planners.
:func:`read_fields` reads FLOAT32/UINT32 fields of any PointCloud2 layout back (tests, tools).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..errors import CloudError

UINT32, FLOAT32 = 6, 7  # sensor_msgs/PointField datatypes
_NUMPY = {UINT32: "u4", FLOAT32: "f4"}



class FieldLike(Protocol):
    """What :func:`read_xyz` needs of a field: ``sensor_msgs/PointField`` and :class:`CloudField` both fit."""

    name: str
    offset: int
    datatype: int
    count: int


@dataclass(frozen=True)
class CloudField:
    """One ``sensor_msgs/PointField``."""

    name: str
    offset: int
    datatype: int = FLOAT32
    count: int = 1


XYZ_FIELDS = (CloudField("x", 0), CloudField("y", 4), CloudField("z", 8))
LABELLED_FIELDS = XYZ_FIELDS + (CloudField("label", 12, UINT32), CloudField("score", 16))


@dataclass(frozen=True)
class PackedCloud:
    """The PointCloud2 fields other than the header, ready to copy into a message."""

    data: bytes
    width: int
    height: int = 1
    fields: tuple[CloudField, ...] = XYZ_FIELDS
    point_step: int = 12
    is_bigendian: bool = False
    is_dense: bool = True  # no NaN or inf points

    @property
    def row_step(self) -> int:
        return self.point_step * self.width


def pack_xyz(points: np.ndarray) -> PackedCloud:
    """(N, 3) finite points (metres) -> an unorganised xyz cloud of N points."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise CloudError(f"points must be (N, 3), got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise CloudError("points must be finite (drop invalid depth before packing)")
    data = np.ascontiguousarray(points, dtype="<f4").tobytes()
    return PackedCloud(data=data, width=int(points.shape[0]))


def pack_labelled(points: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> PackedCloud:
    """(N, 3) finite points, their (N,) labels and (N,) scores -> an unorganised x, y, z, label, score cloud."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3 or not np.all(np.isfinite(points)):
        raise CloudError(f"points must be finite and (N, 3), got shape {points.shape}")
    labels, scores = np.asarray(labels).reshape(-1), np.asarray(scores).reshape(-1)
    if labels.size != points.shape[0] or scores.size != points.shape[0]:
        raise CloudError(f"{points.shape[0]} points need as many labels and scores, got {labels.size} and {scores.size}")
    records = np.empty(points.shape[0], dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u4"),
                                               ("score", "<f4")])
    records["x"], records["y"], records["z"] = points[:, 0], points[:, 1], points[:, 2]
    records["label"], records["score"] = labels, scores
    return PackedCloud(data=records.tobytes(), width=int(points.shape[0]), fields=LABELLED_FIELDS, point_step=20)


def read_fields(data: bytes | bytearray | memoryview | Sequence[int], fields: Sequence[FieldLike], names: Sequence[str],
                point_step: int, width: int, height: int = 1, is_bigendian: bool = False,
                row_step: int | None = None) -> dict[str, np.ndarray]:
    """The named FLOAT32 / UINT32 fields of a PointCloud2 (padding and other fields skipped), each (width * height,)."""
    by_name = {f.name: f for f in fields}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise CloudError(f"cloud has no field {', '.join(missing)} (fields: {', '.join(by_name) or 'none'})")
    for name in names:
        f = by_name[name]
        if f.datatype not in _NUMPY or f.count != 1 or f.offset + 4 > point_step:
            raise CloudError(f"field {name!r} must be one FLOAT32 or UINT32 inside the point; got datatype "
                             f"{f.datatype}, count {f.count}, offset {f.offset} with point_step {point_step}")
    row_step = point_step * width if row_step is None else row_step
    buffer = np.frombuffer(bytes(data), dtype=np.uint8)
    if row_step < point_step * width or buffer.size != row_step * height:
        raise CloudError(f"cloud data is {buffer.size} bytes; {height} rows of row_step {row_step} "
                         f"(>= {width} points x {point_step} bytes) were expected")
    order = ">" if is_bigendian else "<"
    dtype = np.dtype({"names": list(names), "formats": [order + _NUMPY[by_name[n].datatype] for n in names],
                      "offsets": [by_name[n].offset for n in names], "itemsize": point_step})
    rows = buffer.reshape(height, row_step)[:, :point_step * width]
    records = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    return {name: records[name].astype(np.dtype(_NUMPY[by_name[name].datatype])) for name in names}


def read_xyz(data: bytes | bytearray | memoryview | Sequence[int], fields: Sequence[FieldLike], point_step: int,
             width: int, height: int = 1, is_bigendian: bool = False, row_step: int | None = None) -> np.ndarray:
    """(width * height, 3) float32 x/y/z of a PointCloud2 given its fields (padding and extra fields skipped)."""
    columns = read_fields(data, fields, "xyz", point_step, width, height, is_bigendian, row_step)
    return np.stack([columns[n] for n in "xyz"], axis=1).astype(np.float32)
