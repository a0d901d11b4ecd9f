"""`partclipseg-ros bench --cameras`: the multi-camera table as users run it (tiny model, short window), every
process real: two cameras, one node serving both and two single-camera nodes, each in its own process."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros


def test_cameras_table_compares_one_node_with_separate_nodes():
    run = subprocess.run([sys.executable, "-m", "partclipseg_ros.cli", "bench", "--cameras", "2", "--sizes", "tiny",
                          "--camera-seconds", "3", "--camera-backend", "torch"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in run.stdout.splitlines()
            if line.startswith(("| one node", "| separate nodes"))]
    cameras = {(row[0], row[1]): float(row[2]) for row in rows if row[1] != "all"}
    assert set(cameras) == {(setup, cam) for setup in ("one node", "separate nodes") for cam in ("cam0", "cam1")}
    assert all(hz > 0 for hz in cameras.values()), run.stdout  # every camera answered in both setups
    totals = {row[0]: (float(row[2]), float(row[5])) for row in rows if row[1] == "all"}
    for setup, (hz, rss_mb) in totals.items():
        assert hz == pytest.approx(cameras[setup, "cam0"] + cameras[setup, "cam1"], abs=0.011)
        assert rss_mb > 100  # the nodes' resident memory, summed
    assert "one node / separate nodes, answered frames per second:" in run.stdout
