"""Overlays that read right (partclipseg/overlay.py): the legend drawn once and in register, parts not found and
queries the model never learned said so, the random-weights banner legible on any photo."""
import cv2
import numpy as np
import pytest

from partclipseg.data.samples import load_sample
from partclipseg.overlay import BANNER_RGB, FONT, RANDOM_BANNER, legend_lines, overlay
from partclipseg.postprocess import PartResult
from partclipseg.queries import PartQuery

GREY = 128


def _changed_columns(image: np.ndarray) -> np.ndarray:
    return np.flatnonzero((image != GREY).any(axis=(0, 2)))


@pytest.mark.parametrize("text", ["cup/handle 0.67", "saucer/rim 0.45", "pot/lid: not found"])
def test_legend_text_is_drawn_once_and_in_register(text):
    """OpenCV 5 draws thicker text wider: the old black outline (thickness + 2) stuck out past the white text, so
    "0.67" read "0.677". Now every pixel the legend changes lies within its text's box, and the white text has
    exactly the extent OpenCV gives for it."""
    photo = np.full((400, 600, 3), GREY, np.uint8)
    out = overlay(photo, np.zeros((400, 600), np.uint8), [text])
    scale, thick = max(0.4, 400 / 900), 1
    (width, _), _ = cv2.getTextSize(text, FONT, scale, thick)
    line = int(28 * scale) + 4
    white = np.flatnonzero((out[:line + 8] > 200).all(axis=2).any(axis=0))
    assert white[0] >= line + 6 - 1 and white[-1] <= line + 6 + width + 1  # the text where OpenCV puts it
    assert _changed_columns(out[:line + 8])[-1] <= line + 6 + width + line // 8 + 1  # nothing beyond its box
    dark = (out[:line + 8] < 40).all(axis=2)  # no black copy of the text (the old outline) anywhere
    assert not dark.any()


def test_legend_says_not_found_and_marks_queries_the_model_never_learned():
    parts = [PartResult(PartQuery("handle", "cup"), 1, 0.6712, 120, (0, 0, 10, 12)),
             PartResult(PartQuery("lid", "pot"), 2, 0.0, 0, (0, 0, 0, 0)),
             PartResult(PartQuery("ear", "cat"), 3, 0.55, 40, (0, 0, 5, 8), unknown_query=True),
             PartResult(PartQuery("grip"), 4, 0.0, 0, (0, 0, 0, 0), unknown_query=True)]
    assert legend_lines(parts) == ["cup/handle 0.67", "pot/lid: not found", "cat/ear 0.55 (not learned)",
                                   "grip: not found (not learned)"]


def test_random_weights_banner_reads_the_same_on_any_photo():
    """White text on an opaque red bar: the banner's pixels do not depend on the photo under it."""
    photos = [np.zeros((300, 500, 3), np.uint8), np.full((300, 500, 3), 255, np.uint8),
              np.tile(np.array([220, 30, 30], np.uint8), (300, 500, 1)),
              np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8),
              cv2.resize(load_sample("rocket"), (500, 300))]
    labels = np.zeros((300, 500), np.uint8)
    drawn = [overlay(photo, labels, [], banner=RANDOM_BANNER) for photo in photos]
    bar_rows = np.flatnonzero((drawn[0][:, -1] == BANNER_RGB).all(axis=1))  # the bar spans the full width
    assert len(bar_rows) >= 12 and bar_rows[-1] == 299 and np.all(np.diff(bar_rows) == 1)
    bars = [image[bar_rows[0]:] for image in drawn]
    for bar in bars[1:]:
        np.testing.assert_array_equal(bar, bars[0])
    text = (bars[0] > 200).all(axis=2)
    assert 100 < text.sum() < 0.3 * text.size  # white letters
    assert (bars[0] == BANNER_RGB).all(axis=2).mean() > 0.6  # on red
