"""sensor_msgs/CompressedImage <-> numpy, as image_transport's ``compressed`` and ``compressedDepth`` plugins write
them (docs/ros.md, "Compressed transport"); decoding with OpenCV, every bad message an ImageError with the reason.

* ``compressed``: JPEG or PNG bytes; ``format`` is ``"<encoding>; <jpeg|png> compressed <decoded order>"`` (e.g.
  ``rgb8; jpeg compressed bgr8``), or just ``jpeg``/``png`` from older publishers. OpenCV decodes to BGR(A) or grey.
* ``compressedDepth``: a 12-byte header (int32 format, float32 quantisation A and B, little-endian) followed by a
  PNG; ``format`` is ``"16UC1; compressedDepth png"`` (millimetres as they are) or ``"32FC1; compressedDepth png"``
  (inverse depth: the PNG holds ``A / z + B``, decoded as ``z = A / (v - B)``, 0 = no depth).
"""
from __future__ import annotations

import struct

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from partclipseg.defaults import MAX_IMAGE_PIXELS
from partclipseg.errors import ImageError

COMPRESSED, COMPRESSED_DEPTH = "compressed", "compressedDepth"  # image_transport's topic suffixes
_DEPTH_HEADER = struct.Struct("<iff")
_INV_DEPTH = 0  # compressed_depth_image_transport's compressionFormat INV_DEPTH
_COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


def _payload(msg: CompressedImage) -> np.ndarray:
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size == 0:
        raise ImageError("compressed image has no data")
    return data


def _checked_decode(data: np.ndarray, what: str) -> np.ndarray:
    """cv2.imdecode with its size checked from the header first (a tiny file may claim a huge image)."""
    image = None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise ImageError(f"{what} could not be decoded ({str(error).strip().splitlines()[-1]})") from None
    if image is None:
        raise ImageError(f"{what} could not be decoded: the data is not a complete JPEG or PNG file")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ImageError(f"{what} decodes to {image.shape[1]}x{image.shape[0]}; the limit is {MAX_IMAGE_PIXELS} "
                         "pixels")
    return image


def decode_image(msg: CompressedImage) -> tuple[np.ndarray, str]:
    """A ``compressed`` colour or grey frame -> (H, W[, C]) uint8 array and its colour order ("bgr" or "rgb")."""
    encoding, _, scheme = (part.strip() for part in msg.format.partition(";"))
    if not scheme and encoding in ("jpeg", "jpg", "png"):  # older publishers write the codec alone
        encoding, scheme = "", f"{encoding} compressed"
    codec = scheme.split(" ")[0] if scheme else ""
    if codec not in ("jpeg", "jpg", "png") or "compressed" not in scheme:
        hint = (" (that is a depth stream: set it as 'depth', not 'image')" if COMPRESSED_DEPTH in msg.format else "")
        raise ImageError(f"unsupported compressed image format {msg.format!r}: expected image_transport's "
                         f"'<encoding>; jpeg compressed bgr8' or '... png compressed ...'{hint}")
    if encoding and encoding not in _COLOUR_ENCODINGS:
        raise ImageError(f"compressed image of encoding {encoding!r}; accepted: {', '.join(_COLOUR_ENCODINGS)}")
    image = _checked_decode(_payload(msg), f"{codec.upper()} image")
    if image.dtype != np.uint8:
        raise ImageError(f"compressed image decodes to {image.dtype} samples; publish 8-bit colour or grey")
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise ImageError(f"compressed image decodes to {image.shape[2]} channels; publish colour or grey")
    decoded_order = scheme.split(" ")[-1]  # image_transport writes bgr8 (OpenCV's order) for colour
    return image, "rgb" if decoded_order.startswith("rgb") else "bgr"


def decode_depth(msg: CompressedImage) -> np.ndarray:
    """A ``compressedDepth`` PNG -> (H, W) uint16 millimetres (16UC1) or float32 metres (32FC1, NaN = none)."""
    encoding, _, scheme = (part.strip() for part in msg.format.partition(";"))
    if scheme and scheme != "compressedDepth" and not scheme.startswith("compressedDepth png"):
        codec = scheme.removeprefix("compressedDepth").strip() or scheme
        raise ImageError(f"unsupported compressedDepth format {msg.format!r}: only PNG is decoded here, not {codec!r} "
                         "(set the publisher's compressedDepth format parameter to png)")
    if encoding not in ("16UC1", "32FC1"):
        raise ImageError(f"compressedDepth image of encoding {encoding!r}; accepted: 16UC1 (mm), 32FC1 (m)")
    data = _payload(msg)
    if data.size <= _DEPTH_HEADER.size:
        raise ImageError(f"compressedDepth image of {data.size} bytes is shorter than its 12-byte header and a PNG")
    kind, quant_a, quant_b = _DEPTH_HEADER.unpack(data[:_DEPTH_HEADER.size].tobytes())
    packed = _checked_decode(data[_DEPTH_HEADER.size:], "compressedDepth PNG")
    if packed.dtype != np.uint16 or packed.ndim != 2:
        raise ImageError(f"compressedDepth PNG holds {packed.dtype} with shape {packed.shape}; expected one uint16 "
                         "channel")
    if encoding == "16UC1":
        return packed
    if kind != _INV_DEPTH or not (np.isfinite(quant_a) and np.isfinite(quant_b) and quant_a > 0):
        raise ImageError(f"compressedDepth 32FC1 header is not inverse-depth coding (format {kind}, A {quant_a}, "
                         f"B {quant_b})")
    values = packed.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(quant_a) / (values - np.float32(quant_b))
    depth[packed == 0] = np.nan
    return depth


def encode_image(image: np.ndarray, encoding: str, header: Header | None = None, codec: str = "jpeg",
                 quality: int = 90) -> CompressedImage:
    """What image_transport's ``compressed`` publisher sends for an (H, W, 3) RGB/BGR or (H, W) grey image."""
    order = {"rgb8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGBA2BGRA}.get(encoding)
    bgr = cv2.cvtColor(image, order) if order is not None else image
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if codec == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, data = cv2.imencode(f".{'jpg' if codec == 'jpeg' else 'png'}", bgr, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {encoding} image as {codec}")
    target = "mono8" if image.ndim == 2 else ("bgra8" if image.shape[2] == 4 and codec == "png" else "bgr8")
    msg = CompressedImage(format=f"{encoding}; {codec} compressed {target}")
    if header is not None:
        msg.header = header
    msg.data = data.tobytes()
    return msg


def encode_depth(depth: np.ndarray, header: Header | None = None, depth_max: float = 10.0,
                 quantisation: float = 100.0) -> CompressedImage:
    """What image_transport's ``compressedDepth`` publisher sends: uint16 mm as they are, float32 m inverse-coded."""
    if depth.dtype == np.uint16:
        encoding, packed, quant_a, quant_b = "16UC1", depth, 0.0, 0.0
    elif depth.dtype == np.float32:
        encoding = "32FC1"
        quant_a = np.float32(quantisation * (quantisation + 1.0))
        quant_b = np.float32(1.0 - quant_a / depth_max)
        with np.errstate(divide="ignore", invalid="ignore"):
            coded = np.where((depth > 0) & (depth < depth_max), quant_a / depth + quant_b, 0.0)
        packed = np.nan_to_num(coded, nan=0.0).astype(np.uint16)
    else:
        raise ValueError(f"compressedDepth takes uint16 (mm) or float32 (m) depth, not {depth.dtype}")
    ok, data = cv2.imencode(".png", packed, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("OpenCV could not encode the depth image as PNG")
    msg = CompressedImage(format=f"{encoding}; compressedDepth png")
    if header is not None:
        msg.header = header
    msg.data = _DEPTH_HEADER.pack(_INV_DEPTH, float(quant_a), float(quant_b)) + data.tobytes()
    return msg
