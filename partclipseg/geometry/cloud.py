"""Point clouds as ``sensor_msgs/PointCloud2`` lays them out, without ROS: the ROS layer only copies the fields.

:func:`pack_xyz` gives the standard unorganised xyz cloud (``x``, ``y``, ``z`` FLOAT32 at offsets 0, 4, 8,
``point_step`` 12, ``height`` 1, little-endian, dense). :func:`read_xyz` reads any PointCloud2 layout with float32
x/y/z fields back into an (N, 3) array (tests, tools).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..errors import CloudError

FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32



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


def read_xyz(data: bytes | bytearray | memoryview | Sequence[int], fields: Sequence[FieldLike], point_step: int,
             width: int, height: int = 1, is_bigendian: bool = False, row_step: int | None = None) -> np.ndarray:
    """(width * height, 3) float32 x/y/z of a PointCloud2 given its fields (padding and extra fields skipped)."""
    by_name = {f.name: f for f in fields}
    missing = [n for n in "xyz" if n not in by_name]
    if missing:
        raise CloudError(f"cloud has no field {', '.join(missing)} (fields: {', '.join(by_name) or 'none'})")
    for name in "xyz":
        f = by_name[name]
        if f.datatype != FLOAT32 or f.count != 1 or f.offset + 4 > point_step:
            raise CloudError(f"field {name!r} must be one FLOAT32 inside the point; got datatype {f.datatype}, "
                             f"count {f.count}, offset {f.offset} with point_step {point_step}")
    row_step = point_step * width if row_step is None else row_step
    buffer = np.frombuffer(bytes(data), dtype=np.uint8)
    if row_step < point_step * width or buffer.size != row_step * height:
        raise CloudError(f"cloud data is {buffer.size} bytes; {height} rows of row_step {row_step} "
                         f"(>= {width} points x {point_step} bytes) were expected")
    dtype = np.dtype({"names": list("xyz"), "formats": [">f4" if is_bigendian else "<f4"] * 3,
                      "offsets": [by_name[n].offset for n in "xyz"], "itemsize": point_step})
    rows = buffer.reshape(height, row_step)[:, :point_step * width]
    records = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    return np.stack([records[n] for n in "xyz"], axis=1).astype(np.float32)
