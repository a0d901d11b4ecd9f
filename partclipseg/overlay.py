"""Colour overlays with a legend, shared by the CLI and the ROS node."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

if TYPE_CHECKING:
    from .postprocess import PartResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
BANNER_RGB = (200, 0, 0)
UNKNOWN_MARK = "(not learned)"  # a query a closed-vocabulary model was never trained on
RANDOM_BANNER = "RANDOM WEIGHTS - masks are meaningless"

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


def legend_lines(parts: Sequence["PartResult"]) -> list[str]:
    """The legend of a segmentation: per query its name and score, "not found" when it has no pixel, and a mark
    when a closed-vocabulary model never learned it (the CLI and the node draw the same)."""
    lines = []
    for part in parts:
        text = f"{part.query.name} {part.score:.2f}" if part.pixel_count else f"{part.query.name}: not found"
        lines.append(text + (f" {UNKNOWN_MARK}" if part.unknown_query else ""))
    return lines


def overlay(
    rgb: np.ndarray,
    labels: np.ndarray,
    legend: Sequence[str],
    alpha: float = 0.55,
    banner: str | None = None,
) -> np.ndarray:
    """Blend label colours over an RGB image and draw ``legend[i]`` beside the colour of label i + 1.

    Legend lines sit on a dark box and ``banner`` (e.g. a warning that weights are random) in white on a red bar
    across the bottom, so both read on any photo.
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
    pad = max(2, line // 8)
    for i, text in enumerate(legend):
        y = 6 + i * line
        (width, _), _ = cv2.getTextSize(text, FONT, scale, thick)
        _shade(out, (4, y - pad // 2, line + 8 + width + pad, y + line - 6 + pad // 2))
        cv2.rectangle(out, (6, y), (6 + line - 6, y + line - 6), colour(i + 1), -1)
        cv2.putText(out, text, (line + 6, y + line - 9), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
    if banner:
        (width, height), baseline = cv2.getTextSize(banner, FONT, scale, thick)
        top = rgb.shape[0] - height - baseline - 2 * pad
        cv2.rectangle(out, (0, top), (rgb.shape[1] - 1, rgb.shape[0] - 1), BANNER_RGB, -1)
        cv2.putText(out, banner, (pad + 2, rgb.shape[0] - baseline - pad), FONT, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)
    return out


def _shade(img: np.ndarray, box: tuple[int, int, int, int], darkness: float = 0.65) -> None:
    """Darken ``box`` = (x0, y0, x1, y1) of ``img`` in place (clipped to the image)."""
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(img.shape[1], box[2]), min(img.shape[0], box[3])
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = (img[y0:y1, x0:x1] * (1 - darkness)).astype(np.uint8)
