"""numpy <-> sensor_msgs/Image without cv_bridge.

Receiving is zero-copy: the array is a read-only view of the message's buffer. Every malformed message raises
:class:`~partclipseg.preprocess.ImageError` with what was wrong and what to send instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from partclipseg.preprocess import ImageError


@dataclass(frozen=True)
class Encoding:
    dtype: str  # numpy dtype, native byte order
    channels: int
    color_order: str  # what partclipseg.preprocess.as_rgb is told ("rgb" also for grey and depth)


ENCODINGS = {
    "rgb8": Encoding("u1", 3, "rgb"),
    "bgr8": Encoding("u1", 3, "bgr"),
    "rgba8": Encoding("u1", 4, "rgb"),
    "bgra8": Encoding("u1", 4, "bgr"),
    "mono8": Encoding("u1", 1, "rgb"),
    "mono16": Encoding("u2", 1, "rgb"),
    "16UC1": Encoding("u2", 1, "rgb"),  # depth in millimetres
    "32FC1": Encoding("f4", 1, "rgb"),  # depth in metres
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "mono8", "rgba8", "bgra8")
_HINTS = {
    "8UC3": "8UC3 does not say the channel order: publish rgb8 or bgr8",
    "8UC1": "publish mono8 instead of 8UC1",
    "rgb16": "scale to 8 bits and publish rgb8",
    "bgr16": "scale to 8 bits and publish bgr8",
    "16UC1": "16UC1 is a depth image: subscribe the colour stream to 'image' and depth to 'depth'",
    "32FC1": "32FC1 is a depth image: subscribe the colour stream to 'image' and depth to 'depth'",
}


def image_to_numpy(msg: Image, accept: tuple[str, ...] = COLOR_ENCODINGS) -> tuple[np.ndarray, str]:
    """A read-only (H, W) or (H, W, C) view of ``msg.data`` and the colour order of its channels.

    Rows may be padded (``step`` > width x pixel size). Multi-byte data flagged big-endian is converted to native
    order (the only case that copies).
    """
    encoding = msg.encoding
    if encoding not in accept:
        hint = _HINTS.get(encoding) or (
            "Bayer and YUV images need debayering / colour conversion first (image_proc)"
            if encoding.startswith(("bayer", "yuv", "uyvy", "yuyv", "nv21", "nv24"))
            else "convert it before publishing"
        )
        raise ImageError(f"unsupported image encoding {encoding!r}; accepted: {', '.join(accept)} ({hint})")
    spec = ENCODINGS[encoding]
    height, width, step = msg.height, msg.width, msg.step
    if height == 0 or width == 0:
        raise ImageError(f"image is empty ({width}x{height}, encoding {encoding})")
    dtype = np.dtype(spec.dtype)
    row_bytes = width * spec.channels * dtype.itemsize
    if step < row_bytes:
        raise ImageError(
            f"step {step} is smaller than one row of a {width}-pixel {encoding} image ({row_bytes} bytes); "
            "step must be the row length in bytes"
        )
    if step % dtype.itemsize:
        raise ImageError(f"step {step} is not a multiple of the {dtype.itemsize}-byte {encoding} sample size")
    size = len(msg.data)
    if size < step * height:
        raise ImageError(
            f"image data is truncated: {size} bytes for {height} rows of step {step} (expected {step * height})"
        )
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=step * height).reshape(height, step)
    big = bool(msg.is_bigendian) and dtype.itemsize > 1
    array = rows[:, :row_bytes].view(dtype.newbyteorder(">") if big else dtype)
    if big:
        array = array.astype(dtype)
    shape = (height, width) if spec.channels == 1 else (height, width, spec.channels)
    array = array.reshape(shape)
    array.flags.writeable = False
    return array, spec.color_order


def numpy_to_image(array: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """An Image message holding a copy of ``array`` (little-endian, unpadded rows)."""
    spec = ENCODINGS[encoding]
    channels = 1 if array.ndim == 2 else array.shape[2]
    if array.dtype != np.dtype(spec.dtype) or channels != spec.channels:
        raise ValueError(f"a {encoding} image needs dtype {spec.dtype} with {spec.channels} channel(s), "
                         f"got {array.dtype} with shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.dtype(spec.dtype).newbyteorder("<"))
    msg = Image(
        height=array.shape[0],
        width=array.shape[1],
        encoding=encoding,
        is_bigendian=0,
        step=array.shape[1] * channels * array.itemsize,
    )
    if header is not None:
        msg.header = header
    msg.data = array.tobytes()
    return msg
