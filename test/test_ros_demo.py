"""The README's main command, `partclipseg-ros demo`, through the installed console script from another directory."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytestmark = pytest.mark.ros


def test_demo_console_script_runs_end_to_end(tmp_path):
    script = Path(sys.executable).parent / "partclipseg-ros"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user runs it: no source path tricks
    run = subprocess.run([str(script), "demo", "--random-weights", "tiny", "--sample", "coffee", "--sample", "rocket",
                          "--frames", "3", "--rate", "2", "--out", "overlays"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("frame ")]
    # The first frame finds the node idle and the last one is the newest: both are always answered (a frame in
    # between may be replaced if the model is slower than the rate on a loaded machine).
    assert f"3 frames published, {len(lines)} answered" in run.stdout
    assert lines[0].startswith("frame   0 coffee     600x400  latency") and "parts found" in lines[0]
    assert "cup/handle" in lines[0] and lines[-1].startswith("frame   2 coffee")
    assert "queries: cup/handle; cup/body; saucer/rim; rocket/body; rocket/engine" in run.stdout
    assert "random weights" in run.stderr
    written = sorted(p.name for p in (tmp_path / "overlays").iterdir())
    assert len(written) == len(lines) and written[0] == "000_coffee.png" and written[-1] == "002_coffee.png"
    assert cv2.imread(str(tmp_path / "overlays" / "000_coffee.png")).shape == (400, 600, 3)
