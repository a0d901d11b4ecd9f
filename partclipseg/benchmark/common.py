"""What every benchmark shares: the query list, the test frame, the 3D test scene, timing and the table printer."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..data.raycast import Box, Cylinder, Plane, Sphere, render
from ..data.samples import load_sample
from ..geometry.camera import CameraIntrinsics
from ..queries import PartQuery

# 16 distinct kitchen/workshop objects with the parts a robot asks for.
BENCH_QUERIES = [
    PartQuery(part, obj)
    for obj, part in [
        ("pot", "handle"), ("knife", "blade"), ("mug", "handle"), ("kettle", "spout"), ("bottle", "cap"),
        ("pan", "handle"), ("spatula", "head"), ("jar", "lid"), ("scissors", "blade"), ("drawer", "knob"),
        ("faucet", "lever"), ("hammer", "handle"), ("screwdriver", "tip"), ("teapot", "lid"), ("cup", "rim"),
        ("door", "handle"),
    ]
]
FRAME_SIZE = (480, 640)  # height, width: the node's usual camera frame


def frame(size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """The test frame at ``size`` (height, width): the coffee photo, so logits have realistic structure."""
    return cv2.resize(load_sample("coffee"), size[::-1], interpolation=cv2.INTER_AREA)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in ms over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def format_table(rows: list[dict]) -> str:
    """Rows of dicts as right-aligned text columns (the keys of the first row are the header)."""
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(str(r.get(c, "")).rjust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class TableScene:
    """A rendered 640x480 table scene with exact 16UC1 depth, for the geometry benchmarks."""

    depth_mm: np.ndarray  # (H, W) uint16
    intrinsics: CameraIntrinsics
    distance: np.ndarray  # (H, W) pixel distance from the image centre (y stretched 1.3): masks grow from it

    def disc(self, pixels: int) -> np.ndarray:
        """The ``pixels`` pixels nearest the centre: an elliptical blob over the objects and the table."""
        threshold = np.partition(self.distance.ravel(), pixels - 1)[pixels - 1]
        return self.distance <= threshold

    def rings(self, count: int, pixels: int) -> np.ndarray:
        """A label image with ``count`` parts of ``pixels`` pixels each: consecutive rings around the centre."""
        order = np.argsort(self.distance.ravel(), kind="stable")
        labels = np.zeros(self.distance.size, np.uint8)
        for i in range(count):
            labels[order[i * pixels:(i + 1) * pixels]] = i + 1
        return labels.reshape(self.distance.shape)


def table_scene() -> TableScene:
    """A table plane, a handle-like cylinder, a flat box and a sphere, seen by a 525 px camera at 640x480."""
    k = CameraIntrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=640, height=480)
    primitives = [Plane([0, 0, 0.9], [0, -0.35, -1]), Cylinder([0.05, 0.02, 0.55], [1, -0.4, 0.1], 0.015, 0.12),
                  Box([-0.08, 0.04, 0.6], np.eye(3), [0.07, 0.02, 0.002]), Sphere([0.0, -0.05, 0.7], 0.06)]
    v, u = np.mgrid[0:k.height, 0:k.width]
    return TableScene(render(primitives, k).depth_mm(), k, np.hypot(u - k.cx, (v - k.cy) * 1.3))
