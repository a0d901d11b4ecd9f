#!/usr/bin/env python3
"""Benchmark: part geometry (mask + aligned depth -> points, pose, extent) per part at 640x480.

Goal: <= 2 ms per part on the CI CPUs. Baselines measured in the same run on the same masks:
* "full cloud": the straightforward numpy pipeline (depth_image_proc style, with its per-pixel ray table cached):
  convert the whole depth image to metres, back-project every pixel into an organised cloud, then index it with
  the mask and run the same statistics with plain numpy calls (np.median, mean over axis 0, matmul);
* "per-pixel loop": the same computation with the points gathered in a Python loop over the mask's pixels.

Usage: .venv/bin/python scripts/bench_geometry.py [--repeats N]
"""
from __future__ import annotations

import argparse
import os
import platform

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # no ROS here, but never leave the machine
os.environ.setdefault("ROS_DOMAIN_ID", "42")

import numpy as np  # noqa: E402

from partclipseg.benchmark.common import median_ms, table_scene  # noqa: E402
from partclipseg.geometry.parts import label_geometries, part_geometry  # noqa: E402
from partclipseg.geometry.rotations import grasp_frame  # noqa: E402

SCENE = table_scene()
K = SCENE.intrinsics
RAYS = K.rays()
MASK_SIZES = (1_000, 5_000, 20_000, 80_000)  # pixels


def _stats(points: np.ndarray) -> np.ndarray:
    centroid = points.mean(axis=0)
    centred = points - centroid
    _, vectors = np.linalg.eigh(centred.T @ centred)
    rotation = grasp_frame(centroid, vectors[:, 2])
    local = centred @ rotation
    return local.max(axis=0) - local.min(axis=0)


def _inliers(z: np.ndarray) -> np.ndarray:
    median = np.median(z)
    deviation = np.abs(z - median)
    return deviation <= max(5.0 * 1.4826 * np.median(deviation), 0.005)


def full_cloud(mask: np.ndarray, depth: np.ndarray) -> np.ndarray:
    metres = depth.astype(np.float64) * 0.001
    cloud = RAYS * metres[..., None]
    points = cloud[mask & (metres > 0)]
    return _stats(points[_inliers(points[:, 2])])


def per_pixel_loop(mask: np.ndarray, depth: np.ndarray) -> np.ndarray:
    points = []
    for v, u in zip(*np.nonzero(mask)):
        z = depth[v, u] * 0.001
        if z > 0:
            points.append(((u - K.cx) * z / K.fx, (v - K.cy) * z / K.fy, z))
    points = np.array(points)
    return _stats(points[_inliers(points[:, 2])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    depth = SCENE.depth_mm
    print(f"part geometry at {K.width}x{K.height}, 16UC1 depth; median of {args.repeats} runs; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}")
    print(f"{'mask px':>8} {'points':>7} | {'part_geometry':>13} {'per part, 4 labels':>18} | "
          f"{'full cloud':>10} {'per-pixel loop':>14}  ms")
    for pixels in MASK_SIZES:
        mask = SCENE.disc(pixels)
        geometry = part_geometry(mask, depth, K)
        baseline = full_cloud(mask, depth)
        assert np.allclose(baseline, geometry.extent, atol=1e-6), "baseline and geometry disagree"
        labels = np.zeros(K.size, np.uint8)
        for i, quarter in enumerate(np.array_split(np.flatnonzero(mask), 4)):
            labels.reshape(-1)[quarter] = i + 1
        ours = median_ms(lambda: part_geometry(mask, depth, K), args.repeats)
        batch = median_ms(lambda: label_geometries(labels, 4, depth, K), args.repeats) / 4
        naive = median_ms(lambda: full_cloud(mask, depth), max(3, args.repeats // 5))
        loop = median_ms(lambda: per_pixel_loop(mask, depth), max(1, min(3, args.repeats)))
        print(f"{int(mask.sum()):>8} {geometry.point_count:>7} | {ours:>13.3f} {batch:>18.3f} | "
              f"{naive:>10.3f} {loop:>14.1f}")


if __name__ == "__main__":
    main()
