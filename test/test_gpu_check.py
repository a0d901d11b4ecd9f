"""`scripts/gpu_check.sh`, the one command a GPU session runs, works end to end: here on the CPU (DEVICE=cpu), with
the full-size random model, one reduced-precision variant checked against the fp32 reference and timed."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_script_runs_parity_and_timings_on_the_cpu(tmp_path):
    env = {**os.environ, "DEVICE": "cpu", "VARIANTS": "torch/bf16", "REPEATS": "1", "PYTHON": sys.executable,
           "PARTCLIPSEG_CACHE": str(tmp_path)}
    run = subprocess.run([str(REPO / "scripts" / "gpu_check.sh")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert out.startswith("python 3.") and "tensorrt" in out  # the preflight: versions, and what is missing
    parity = out.split("parity")[1].split("time per frame")[0]
    rows = [line.split() for line in parity.splitlines() if line.strip().startswith("torch/bf16")]
    assert [row[1] for row in rows] == ["1", "8", "16"]
    assert all(row[-1] == "True" and float(row[3]) > 0 for row in rows)  # bf16 differs from fp32, within tolerance
    timings = out.split("time per frame")[1]
    rows = [line.split() for line in timings.splitlines() if line.strip().startswith("torch/bf16")]
    assert [row[1] for row in rows] == ["1", "8", "16"] and all(float(row[3]) > 0 for row in rows)
