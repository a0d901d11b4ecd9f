"""The reliability harness (`partclipseg-ros stress`, docs/ros.md "Reliability"): a short run as CI runs it (about
2,000 hostile messages against the node with the bundled model, under a minute), and what it counts as an
implausible region."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from geometry_msgs.msg import Point, Vector3

from partclipseg.geometry.cloud import FLOAT32
from partclipseg_ros.cli.stress import region_implausibility
from partclipseg_ros.msg import AffordanceRegion
from sensor_msgs.msg import PointCloud2, PointField

pytestmark = pytest.mark.ros


def test_short_stress_run_meets_every_goal(tmp_path):
    run = subprocess.run([sys.executable, "-m", "partclipseg_ros.cli", "stress", "--messages", "2000",
                          "--check-every", "250", "--log", str(tmp_path / "node.log")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr + (tmp_path / "node.log").read_text()[-3000:]
    row = next(line for line in run.stdout.splitlines() if re.match(r"\| \d+ \| \d", line))
    sent, crashes, unhandled, answered, implausible, accepted = [c.strip() for c in row.strip("|").split("|")][:6]
    assert int(sent) >= 2000 and (crashes, unhandled, implausible, accepted) == ("0", "0", "0", "0")
    done, total = map(int, answered.split("/"))
    assert done == total >= 8  # every valid frame answered, with the pot lid's region
    segmented = int(re.search(r"the node: (\d+) frames segmented", run.stdout).group(1))
    refused = int(re.search(r"(\d+) in 2D only", run.stdout).group(1))
    assert segmented > total and refused > 0  # hostile frames reached the model and the 3D checks


def _region(z: float, extent: float, points: np.ndarray) -> AffordanceRegion:
    cloud = PointCloud2(height=1, width=len(points), point_step=12, row_step=12 * len(points),
                        fields=[PointField(name=n, offset=4 * i, datatype=FLOAT32, count=1) for i, n in
                                enumerate("xyz")], is_dense=True)
    cloud.data = np.ascontiguousarray(points, "<f4").tobytes()
    region = AffordanceRegion(query="pot/lid", extent=Vector3(x=extent, y=extent, z=extent), points=cloud,
                              point_count=len(points))
    region.pose.pose.position = Point(x=0.0, y=0.0, z=z)
    return region


def test_what_counts_as_an_implausible_region():
    good = np.column_stack([np.zeros(50), np.zeros(50), np.full(50, 0.3)])
    assert region_implausibility(_region(0.3, 0.2, good), hostile=False) is None
    assert region_implausibility(_region(0.3, 0.2, good), hostile=True) == "a region for a hostile 3D input"
    assert "larger than max_part_extent" in region_implausibility(_region(0.3, 2.0, good), hostile=False)
    assert "outside depth_min..depth_max" in region_implausibility(_region(65.5, 0.2, good), hostile=False)
    assert "points" in region_implausibility(_region(0.3, 0.2, good[:5]), hostile=False)
    far = good.copy()
    far[0, 2] = 1e38
    assert "outside depth_min..depth_max" in region_implausibility(_region(0.3, 0.2, far), hostile=False)
