"""Colour overlays with a legend, shared by the CLI and the ROS node."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

# 16 well-separated colours (RGB); label i uses PALETTE[(i - 1) % 16]; 0 stays uncoloured.
PALETTE = np.array(
    [
        (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
        (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
        (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
    ],
    dtype=np.uint8,
)


def colour(label: int) -> tuple[int, int, int]:
    """RGB colour of a label value (>= 1)."""
    return tuple(int(c) for c in PALETTE[(label - 1) % len(PALETTE)])


def overlay(
    rgb: np.ndarray,
    labels: np.ndarray,
    legend: Sequence[str],
    alpha: float = 0.55,
    banner: str | None = None,
) -> np.ndarray:
    """Blend label colours over an RGB image and draw ``legend[i]`` beside the colour of label i + 1.

    ``banner`` (e.g. a warning that weights are random) is written across the bottom in red.
    """
    table = np.zeros((256, 3), dtype=np.uint8)
    for value in range(1, 256):
        table[value] = colour(value)
    coloured = table[labels]
    out = rgb.copy()
    hit = labels > 0
    out[hit] = (alpha * coloured[hit] + (1 - alpha) * rgb[hit]).astype(np.uint8)
    scale = max(0.4, min(rgb.shape[:2]) / 900)
    thick = max(1, int(round(scale * 2)))
    line = int(28 * scale) + 4
    for i, text in enumerate(legend):
        y = 6 + i * line
        cv2.rectangle(out, (6, y), (6 + line - 6, y + line - 6), colour(i + 1), -1)
        _text(out, text, (line + 6, y + line - 9), scale, thick, (255, 255, 255))
    if banner:
        _text(out, banner, (6, rgb.shape[0] - 10), scale, thick, (255, 40, 40))
    return out


def _text(img: np.ndarray, text: str, origin: tuple[int, int], scale: float, thick: int, rgb: tuple[int, int, int]) -> None:
    cv2.putText(img, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, rgb, thick, cv2.LINE_AA)
