"""docs/ros.md's colcon block, run as typed: a fresh venv with colcon from PyPI builds this package against the
ROS 2 wheels of the set-up, and the installed demo runs from the install space."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MARKER = "<!-- colcon-check: test/test_colcon.py runs this block as typed -->"

pytestmark = pytest.mark.ros


def colcon_block() -> str:
    text = (REPO / "docs" / "ros.md").read_text()
    match = re.search(re.escape(MARKER) + r"\n```bash\n(.*?)```", text, re.S)
    assert match, "docs/ros.md lost its colcon block"
    return match.group(1)


def test_the_documented_colcon_build_works_as_typed(tmp_path):
    block = colcon_block()
    assert "--packages-select partclipseg_ros" in block and "colcon-package-selection" in block
    venv = Path(sys.executable).parent.parent
    # HOME is the test's folder (so ~/ws and ~/colcon-venv are fresh); the block's own VENV=$PWD/.venv is this
    # checkout's set-up, and the test interpreter's venv is that one wherever the checkout lives.
    script = block.replace("VENV=$PWD/.venv", f"VENV={venv}")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    env["HOME"] = str(tmp_path)
    run = subprocess.run(["bash", "-e", "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    install = tmp_path / "ws" / "install" / "partclipseg_ros"
    for path in ("lib/partclipseg_ros/segment_node", "share/partclipseg_ros/launch/segment.launch.py",
                 "share/partclipseg_ros/config/segment.yaml", "share/partclipseg_ros/config/fastdds_shm.xml"):
        assert (install / path).exists(), path
    assert "weights: RANDOM tiny" in run.stdout and "2 frames published" in run.stdout
