"""The README's main command, `partclipseg-ros demo`, through the installed console script from another directory."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytestmark = pytest.mark.ros


def test_demo_console_script_runs_end_to_end(tmp_path):
    script = Path(sys.executable).parent / "partclipseg-ros"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user runs it: no source path tricks
    run = subprocess.run([str(script), "demo", "--random-weights", "tiny", "--sample", "motorcycle", "--sample",
                          "coffee", "--frames", "3", "--rate", "2", "--out", "overlays"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("frame ")]
    # The first frame finds the node idle and the last one is the newest: both are always answered (a frame in
    # between may be replaced if the model is slower than the rate on a loaded machine).
    assert f"3 frames published, {len(lines)} answered" in run.stdout
    assert lines[0].startswith("frame   0 motorcycle 741x500  latency") and "parts found" in lines[0]
    assert "motorbike/wheel" in lines[0] and lines[-1].startswith("frame   2 motorcycle")
    assert "queries: motorbike/wheel; motorbike/saddle; motorbike/headlight; cup/handle; cup/body; saucer/rim" \
        in run.stdout
    # the motorcycle frames come with their real depth and camera_info: each line is followed by its 3D line; random
    # masks cover a third of the scene each, metres wide, so the node refuses their regions as implausible and says
    # why (a region that passes lies 2-4 m from the camera, the Middlebury scene); the coffee frame has no depth
    regions = [line for line in run.stdout.splitlines() if line.lstrip().startswith("3D: ")]
    assert len(regions) == sum(line.startswith("frame ") and "motorcycle" in line for line in lines) >= 2
    depths = [float(z) for z in re.findall(r"at \(-?[\d.]+, -?[\d.]+, (-?[\d.]+)\) m, axis", "".join(regions))]
    assert all(2.0 < z < 4.0 for z in depths), regions
    assert "larger than max_part_extent 1 m: the mask spills over the scene" in run.stderr
    assert depths or all("no region (the node's warning says why)" in line for line in regions)
    assert "random weights" in run.stderr
    written = sorted(p.name for p in (tmp_path / "overlays").iterdir())
    assert len(written) == len(lines) and written[0] == "000_motorcycle.png" and written[-1] == "002_motorcycle.png"
    assert cv2.imread(str(tmp_path / "overlays" / "000_motorcycle.png")).shape == (500, 741, 3)


def test_readme_main_command_segments_the_kitchen_scene_with_the_bundled_model(tmp_path):
    """`partclipseg-ros demo` exactly as the README runs it: the bundled model on the rendered kitchen scene, its
    3D regions from the rendered depth (the scene is 0.2-0.7 m from the camera)."""
    script = Path(sys.executable).parent / "partclipseg-ros"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([str(script), "demo", "--frames", "2"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "weights: partclipseg weights from kitchen-tiny.pth" in run.stdout
    assert "queries: pot/lid; pot/handle; spatula/handle" in run.stdout
    lines = [line for line in run.stdout.splitlines() if line.startswith("frame ")]
    assert lines and all(line.startswith(f"frame   {i} kitchen    640x480") for i, line in enumerate(lines))
    assert "pot/lid" in lines[0].split("parts found")[1]  # found, with its pixel count (the small model's best part)
    regions = [line for line in run.stdout.splitlines() if line.lstrip().startswith("3D: ")]
    assert len(regions) == len(lines) and "pot/lid (open) at (" in regions[0]
    depths = [float(z) for z in re.findall(r"at \(-?[\d.]+, -?[\d.]+, (-?[\d.]+)\) m, axis", regions[0])]
    assert depths and all(0.2 < z < 0.8 for z in depths), regions
    assert "random" not in run.stderr.lower()
    assert "not learned" not in run.stdout and "never trained" not in run.stderr  # the demo's queries are known
