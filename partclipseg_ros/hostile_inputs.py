"""Hostile inputs for the segment node: depth images, camera_infos, colour images, queries and service requests that
crashed nodes, hung them or became implausible 3D regions. ``partclipseg-ros stress`` sends all of them; the tests
send each case on its own and check the node's answer (test_ros_plausibility.py).

Each builder takes a part of the valid frame (its depth in metres, intrinsics or RGB) and returns one message; 3D
cases are sent with a valid colour image and a valid partner of their stamp, so that the node's answer is about
them alone.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest

from partclipseg.defaults import SATURATED_16UC1
from partclipseg.geometry.camera import CameraIntrinsics

from .image_conversion import numpy_to_image
from .messages import camera_info_message

F32 = np.finfo(np.float32)
_RNG = np.random.default_rng(0)


def _depth32(depth: np.ndarray, values) -> Image:
    return numpy_to_image(np.resize(np.asarray(values, np.float32), depth.shape), "32FC1")


def _depth16(depth: np.ndarray, values) -> Image:
    return numpy_to_image(np.resize(np.asarray(values, np.uint16), depth.shape), "16UC1")


def _flagged_big_endian(depth: np.ndarray) -> Image:
    """Little-endian float32 metres whose message says big-endian: the node honours the flag and reads garbage."""
    msg = numpy_to_image(depth.astype(np.float32), "32FC1")
    msg.is_bigendian = 1
    return msg


def big_endian_depth(depth: np.ndarray) -> Image:
    """Valid depth really sent big-endian (is_bigendian=1 with big-endian data): the node honours it."""
    data = np.ascontiguousarray(depth, dtype=">f4")
    return Image(height=depth.shape[0], width=depth.shape[1], encoding="32FC1", is_bigendian=1,
                 step=depth.shape[1] * 4, data=data.tobytes())


def _raw(depth: np.ndarray, encoding: str, data: bytes, step: int | None = None, **fields) -> Image:
    width = fields.pop("width", depth.shape[1])
    size = 4 if encoding == "32FC1" else 2 if encoding in ("16UC1", "mono16") else 1
    msg = Image(height=fields.pop("height", depth.shape[0]), width=width, encoding=encoding, is_bigendian=0,
                step=width * size if step is None else step, **fields)
    msg.data = data
    return msg


# The table (depth rows), then NaN, inf, negative and zero depth: each must give no 3D region.
DEPTH_CASES: dict[str, Callable[[np.ndarray], Image]] = {
    "32FC1 all 1e38": lambda d: _depth32(d, [1e38]),
    "32FC1 alternating float32 max/min": lambda d: _depth32(d, [F32.max, F32.min]),
    "16UC1 all 65535 (saturated)": lambda d: _depth16(d, [SATURATED_16UC1]),
    "32FC1 all 1e-38": lambda d: _depth32(d, [1e-38]),
    "32FC1 with is_bigendian=1": _flagged_big_endian,
    "32FC1 all NaN": lambda d: _depth32(d, [np.nan]),
    "32FC1 all inf": lambda d: _depth32(d, [np.inf, -np.inf]),
    "32FC1 all negative": lambda d: _depth32(d, -d),
    "32FC1 all zero": lambda d: _depth32(d, [0.0]),
    "16UC1 all zero": lambda d: _depth16(d, [0]),
}
# More for the stress test: malformed depth messages (refused before any geometry).
MALFORMED_DEPTH: dict[str, Callable[[np.ndarray], Image]] = {
    "32FC1 random bytes": lambda d: _raw(d, "32FC1", _RNG.bytes(d.size * 4)),
    "16UC1 random bytes": lambda d: _raw(d, "16UC1", _RNG.bytes(d.size * 2)),
    "16UC1 byte-swapped millimetres": lambda d: numpy_to_image(
        np.round(d * 1000).astype(np.uint16).byteswap(), "16UC1"),
    "32FC1 truncated": lambda d: _raw(d, "32FC1", _RNG.bytes(d.size)),
    "32FC1 step too small": lambda d: _raw(d, "32FC1", _RNG.bytes(d.size * 4), step=4),
    "32FC1 half size": lambda d: numpy_to_image(np.ascontiguousarray(d[::2, ::2], np.float32), "32FC1"),
    "mono8 depth": lambda d: _raw(d, "mono8", bytes(d.size)),
    "64FC1 depth": lambda d: _raw(d, "64FC1", bytes(d.size * 8), step=d.shape[1] * 8),
    "zero-size depth": lambda d: _raw(d, "32FC1", b"", width=0, height=0),
    "32FC1 huge declared size": lambda d: _raw(d, "32FC1", bytes(64), width=2**31 - 1, height=2**31 - 1),
}


def _info(intrinsics: CameraIntrinsics, **fields) -> CameraInfo:
    msg = camera_info_message(intrinsics, CameraInfo().header)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def _k(intrinsics: CameraIntrinsics, **entries: float) -> list[float]:
    matrix = intrinsics.as_matrix().reshape(-1)
    index = {"fx": 0, "cx": 2, "fy": 4, "cy": 5, "k8": 8}
    for name, value in entries.items():
        matrix[index[name]] = value
    return matrix.tolist()


# The table (camera_info rows) and more: each must be refused (no 3D for that frame).
CAMERA_INFO_CASES: dict[str, Callable[[CameraIntrinsics], CameraInfo]] = {
    "fx = fy = 1e-30": lambda i: _info(i, k=_k(i, fx=1e-30, fy=1e-30)),
    "cx = -1e9": lambda i: _info(i, k=_k(i, cx=-1e9)),
    "K[8] = 0": lambda i: _info(i, k=_k(i, k8=0.0)),
    "D of 1000 values of 1e9": lambda i: _info(i, d=[1e9] * 1000),
    "binning 2^32-1": lambda i: _info(i, binning_x=2**32 - 1, binning_y=2**32 - 1),
}
MALFORMED_CAMERA_INFO: dict[str, Callable[[CameraIntrinsics], CameraInfo]] = {
    "K all zero": lambda i: _info(i, k=[0.0] * 9),
    "K NaN": lambda i: _info(i, k=[float("nan")] * 9),
    "fx = 1e30": lambda i: _info(i, k=_k(i, fx=1e30, fy=1e30)),
    "fx negative": lambda i: _info(i, k=_k(i, fx=-500.0)),
    "size 0x0": lambda i: _info(i, width=0, height=0),
    "size of another camera": lambda i: _info(i, width=i.width * 2, height=i.height * 2),
    "ROI outside the image": lambda i: _info(i, roi=_roi(i.width, 0, 100, 100)),
    "unknown distortion model": lambda i: _info(i, distortion_model="x" * 1000, d=[0.0] * 7),
    "D with NaN": lambda i: _info(i, d=[float("nan")] * 5),
}


def _roi(x: int, y: int, width: int, height: int) -> RegionOfInterest:
    return RegionOfInterest(x_offset=x, y_offset=y, width=width, height=height)


def _image(encoding: str, width: int, height: int, data: bytes, step: int, **fields) -> Image:
    msg = Image(height=height, width=width, encoding=encoding, step=step, **fields)
    msg.data = data
    return msg


# Colour images the node must refuse (or serve) without crashing.
IMAGE_CASES: dict[str, Callable[[np.ndarray], Image]] = {
    "8UC3": lambda rgb: _image("8UC3", 64, 48, bytes(64 * 48 * 3), 64 * 3),
    "yuv422": lambda rgb: _image("yuv422", 64, 48, bytes(64 * 48 * 2), 64 * 2),
    "bayer_rggb8": lambda rgb: _image("bayer_rggb8", 64, 48, bytes(64 * 48), 64),
    "16UC1 on image": lambda rgb: _image("16UC1", 64, 48, bytes(64 * 48 * 2), 64 * 2),
    "unicode encoding": lambda rgb: _image("r\u00e9b8\u2603", 64, 48, bytes(64 * 48 * 3), 64 * 3),
    "empty encoding": lambda rgb: _image("", 64, 48, bytes(64 * 48 * 3), 64 * 3),
    "step too small": lambda rgb: _image("rgb8", 64, 48, bytes(64 * 48 * 3), 10),
    "step not a row": lambda rgb: _image("rgb8", 64, 48, bytes(64 * 48 * 3 + 48), 64 * 3 + 1),
    "truncated": lambda rgb: _image("rgb8", 64, 48, bytes(100), 64 * 3),
    "zero size": lambda rgb: _image("rgb8", 0, 0, b"", 0),
    "huge declared size": lambda rgb: _image("rgb8", 2**31 - 1, 2**31 - 1, bytes(64), 2**32 - 1),
    "too many pixels": lambda rgb: _image("mono8", 5000, 5000, bytes(1), 5000),
    "1x1 random": lambda rgb: _image("rgb8", 1, 1, _RNG.bytes(3), 3),
    "random bytes rgb8": lambda rgb: _image("rgb8", 97, 31, _RNG.bytes(97 * 31 * 3), 97 * 3),
    "rgb8 flagged big-endian": lambda rgb: _image("rgb8", 64, 48, _RNG.bytes(64 * 48 * 3), 64 * 3,
                                                  is_bigendian=1),
    "bgra8 padded rows": lambda rgb: _image("bgra8", 33, 17, _RNG.bytes(17 * 200), 200),
}

# Queries the node must refuse with a reason (or accept), never crash on. Strings with a NUL arrive cut short (ROS
# strings end at the first NUL); the parser refuses them where it sees them whole (docs/ros.md, "Queries").
QUERY_CASES: tuple[str, ...] = (
    "", ";;;;", " , , ", "a" * 65, "x/" * 40, "pot/handle/lid", "/handle", "pot/", "grasp:", "fly:kite",
    "grasp:\u2603", "\u00e9\u00e8\u00ea/\u00e7", "\u2603\u2603", "pot\x00handle", "handle of the", "handle of",
    "pot's", "of", "grasp", "grasp:knife", "open:bottle", "; ".join(f"part{i}" for i in range(40)), "a" * 5000,
    "select * from parts", "../../etc/passwd", "pot/handle\n\rknife", "\t\t", "DROP/TABLE", "%s%s%s%n",
    "{{7*7}}", "pot\u200bhandle", "\ud7ff/\ue000",
)


def random_query(rng: np.random.Generator) -> str:
    """A random string of printable and odd characters (up to 200)."""
    alphabet = list("abcdefghijklmnopqrstuvwxyz /;,:'&.-_0123456789") + ["\u00e9", "\u2603", "\t", "\x7f", "\x01"]
    return "".join(rng.choice(alphabet, size=int(rng.integers(0, 200))))
