import json
import subprocess
import sys

import cv2
import numpy as np

from partclipseg.cli import main


def test_segment_sample_with_random_weights(tmp_path, capsys):
    assert main(["segment", "--sample", "coffee", "--random-weights", "tiny", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["random_weights"] is True and "RANDOM" in summary["weights"]
    assert summary["queries"] == ["cup/handle", "cup/body", "saucer/rim"]
    labels = cv2.imread(str(tmp_path / "labels.png"), cv2.IMREAD_UNCHANGED)
    overlay = cv2.imread(str(tmp_path / "overlay.png"))
    assert labels.shape == overlay.shape[:2] == (400, 600) and labels.dtype == np.uint8
    counts = np.bincount(labels.ravel(), minlength=4)
    assert [p["pixel_count"] for p in summary["parts"]] == counts[1:4].tolist()
    assert "RANDOM" in capsys.readouterr().err
    # the random-weights banner is drawn in red along the bottom of the overlay
    bottom = overlay[-30:, :200].reshape(-1, 3).astype(int)
    assert ((bottom[:, 2] > 200) & (bottom[:, 1] < 80)).sum() > 20


def test_segment_file_with_queries_and_oracle(tmp_path):
    image = np.random.default_rng(1).integers(0, 255, (90, 130, 3), dtype=np.uint8)
    path = tmp_path / "in.png"
    cv2.imwrite(str(path), image)
    out = tmp_path / "out"
    argv = ["segment", str(path), "--query", "pot/handle", "--query", "knife handle; lid", "--mode", "oracle",
            "--objects", "pot", "--random-weights", "tiny", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "result.json").read_text())
    assert summary["queries"] == ["pot/handle", "knife/handle", "lid"]
    assert summary["parts"][1]["pixel_count"] == 0  # knife absent in oracle mode


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["segment", "--sample", "coffee", "--out", str(tmp_path)]) == 2
    assert "no checkpoint given" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "nope.png"), "--query", "x", "--random-weights", "tiny"]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["segment", "--sample", "coffee", "--query", "a/b/c", "--random-weights", "tiny", "--out", str(tmp_path)]) == 2
    assert "one '/'" in capsys.readouterr().err
    assert main(["segment", "--sample", "coffee", "--mode", "oracle", "--random-weights", "tiny"]) == 2
    assert "--objects" in capsys.readouterr().err


def test_console_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "partclipseg.cli", "segment", "--sample", "rocket", "--random-weights",
                           "tiny", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "rocket:" in proc.stdout and (tmp_path / "overlay.png").exists()
