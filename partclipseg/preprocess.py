"""Image checks and the one image -> tensor function shared by every backend."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .errors import ImageError
from .defaults import IMAGE_MEAN, IMAGE_STD, INPUT_SIZE, MAX_IMAGE_PIXELS

COLOR_ORDERS = ("rgb", "bgr")
_MEAN = np.asarray(IMAGE_MEAN, dtype=np.float32) * 255.0
_INV_STD = 1.0 / (np.asarray(IMAGE_STD, dtype=np.float32) * 255.0)



def as_rgb(image: np.ndarray, color_order: str = "rgb") -> np.ndarray:
    """Check an image and return it as HxWx3 uint8 RGB.

    Accepted: HxW (grey), HxWx1, HxWx3 and HxWx4 uint8 arrays; ``color_order`` says whether colour
    channels are RGB(A) or BGR(A). Anything else raises :class:`ImageError` with the reason.
    """
    if color_order not in COLOR_ORDERS:
        raise ImageError(f"color_order must be one of {COLOR_ORDERS}, got {color_order!r}")
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        hint = (
            "scale it to 8 bits (e.g. image >> 8 for 16-bit data)"
            if image.dtype in (np.uint16, np.int16, np.uint32, np.int32)
            else "convert it to uint8 in 0..255"
        )
        raise ImageError(f"expected a uint8 image, got dtype {image.dtype}; {hint}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ImageError(
            f"expected HxW, HxWx3 or HxWx4, got shape {image.shape}; only grey, RGB/BGR and RGBA/BGRA are supported"
        )
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ImageError(f"image is empty (shape {image.shape})")
    if height * width > MAX_IMAGE_PIXELS:
        raise ImageError(f"image is {width}x{height}; the limit is {MAX_IMAGE_PIXELS} pixels, downscale it first")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    rgb = image[:, :, :3]
    if color_order == "bgr":
        rgb = rgb[:, :, ::-1]
    return np.ascontiguousarray(rgb)


def preprocess(rgb: np.ndarray, size: int = INPUT_SIZE) -> torch.Tensor:
    """HxWx3 uint8 RGB -> (1, 3, size, size) float32 tensor, exactly as the CIDAS processor.

    PIL bilinear resize without keeping the aspect ratio (PIL antialiases when shrinking), then
    ImageNet mean/std. Every backend takes this tensor.
    """
    resized = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR), dtype=np.float32)
    normalised = (resized - _MEAN) * _INV_STD
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))[None]
