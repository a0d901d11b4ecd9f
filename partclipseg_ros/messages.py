"""Core results -> partclipseg_ros messages. Every message carries the source image's header."""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from partclipseg.postprocess import PartResult, Result

from .image_conversion import numpy_to_image
from .msg import PartMask, PartSegmentation


def part_mask(labels: np.ndarray, part: PartResult, header: Header) -> PartMask:
    """One query's mask, cropped to its ROI (mono8, 255 inside); an empty part has a 0x0 mask."""
    x, y, width, height = part.roi
    crop = (labels[y:y + height, x:x + width] == part.label).astype(np.uint8) * np.uint8(255)
    query = part.query
    return PartMask(
        query=query.name,
        object=query.object or "",
        part=query.part,
        score=float(part.score),
        pixel_count=int(part.pixel_count),
        roi=RegionOfInterest(x_offset=x, y_offset=y, width=width, height=height, do_rectify=False),
        mask=numpy_to_image(crop, "mono8", header),
    )


def segmentation_message(result: Result, header: Header) -> PartSegmentation:
    """The PartSegmentation of one frame: label image at source resolution plus one PartMask per query."""
    return PartSegmentation(
        header=header,
        queries=[q.name for q in result.queries],
        labels=numpy_to_image(result.labels, "mono8", header),
        parts=[part_mask(result.labels, part, header) for part in result.parts],
    )


def empty_segmentation(height: int, width: int, header: Header) -> PartSegmentation:
    """The answer while no query is active: no queries, every pixel 0."""
    labels = np.zeros((height, width), dtype=np.uint8)
    return PartSegmentation(header=header, queries=[], labels=numpy_to_image(labels, "mono8", header), parts=[])
