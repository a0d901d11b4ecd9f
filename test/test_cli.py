import argparse
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from partclipseg.cli import build_parser, main
from partclipseg_ros.cli import build_parser as ros_parser


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


def test_every_query_form_of_the_readme_works_in_segment(tmp_path, capsys):
    """The one parser with the bundled affordance vocabulary, as in the node: requests expand, 'grasp' never
    becomes a part named 'grasp', 'handle of the pot' is pot/handle."""
    argv = ["segment", "--sample", "coffee", "--random-weights", "tiny", "--out", str(tmp_path),
            "--query", "pot/handle; pot's handle; handle of the pot; knife handle; handle; grasp:knife; grasp; "
                       "open:bottle"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["queries"] == ["pot/handle", "knife/handle", "handle", "knob", "grip", "bottle/cap"]
    assert [p["affordance"] for p in summary["parts"]] == ["grasp", "grasp", "grasp", "grasp", "grasp", "open"]
    assert "grasp" not in [p["part"] for p in summary["parts"]]
    for bad, reason in (("handle of the", "the object is empty"), ("fly:kite", "unknown affordance 'fly'")):
        assert main(["segment", "--sample", "coffee", "--random-weights", "tiny", "--query", bad,
                     "--out", str(tmp_path)]) == 2
        assert reason in capsys.readouterr().err
    capsys.readouterr()
    custom = tmp_path / "mine.yaml"
    custom.write_text("parts:\n  spout: pour\n  cup/rim: drink\n")
    assert main(["segment", "--sample", "coffee", "--random-weights", "tiny", "--out", str(tmp_path),
                 "--affordances-file", str(custom), "--query", "drink:cup"]) == 0
    assert json.loads((tmp_path / "result.json").read_text())["queries"] == ["cup/rim"]


def test_oracle_objects_and_what_result_json_records(tmp_path, capsys):
    out = tmp_path / "oracle"
    assert main(["segment", "--sample", "coffee", "--random-weights", "tiny", "--mode", "oracle",
                 "--objects", "cup; saucer", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: oracle mode has no background: every pixel is given to a queried part of cup, saucer" in err
    summary = json.loads((out / "result.json").read_text())
    assert (summary["mode"], summary["objects"]) == ("oracle", ["cup", "saucer"])
    assert summary["runs_on"].startswith(f"{summary['backend']} {summary['device']} {summary['precision']}")
    assert summary["backend"] in ("torch", "onnxruntime") and "precision auto" in summary["backend_choice"]
    assert sum(p["pixel_count"] for p in summary["parts"]) == 600 * 400  # no background, as the warning says
    plain = tmp_path / "plain"
    assert main(["segment", "--sample", "coffee", "--random-weights", "tiny", "--objects", "cup", "saucer",
                 "--out", str(plain)]) == 0
    assert "warning: --objects is read only with --mode oracle: cup, saucer ignored in mode pred-all" in \
        capsys.readouterr().err
    assert json.loads((plain / "result.json").read_text())["mode"] == "pred-all"


def test_cli_ranges_match_the_node_parameters(tmp_path, capsys):
    from partclipseg_ros.parameters import SPEC

    for flag, value in (("--score-threshold", "1.5"), ("--score-threshold", "-0.1"), ("--score-threshold", "nan"),
                        ("--min-pixels", "-1"), ("--min-pixels", "2.5")):
        with pytest.raises(SystemExit) as exit_:
            main(["segment", "--sample", "coffee", "--random-weights", "tiny", flag, value])
        assert exit_.value.code == 2 and f"argument {flag}:" in capsys.readouterr().err
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["segment"].format_help().split())
    assert f"({SPEC['score_threshold'].limits[0]:g}..{SPEC['score_threshold'].limits[1]:g};" in help_text
    assert f"({SPEC['min_pixels'].limits[0]}..{SPEC['min_pixels'].limits[1]})" in help_text


def _sub_parsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


@pytest.mark.parametrize("make", [build_parser, ros_parser], ids=["partclipseg", "partclipseg-ros"])
def test_every_option_has_help_and_shows_its_default(make):
    for name, sub in _sub_parsers(make()):
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}: no help text"
            shown = action.default not in (None, False, "", [], argparse.SUPPRESS) and action.option_strings
            if shown:
                value = " ".join(map(str, action.default)) if isinstance(action.default, list) else action.default
                assert f"default: {value}" in text or "default" in action.help, (name, action.option_strings)


def test_closed_model_queries_it_never_learned_are_flagged(tmp_path, capsys):
    """The bundled model (closed vocabulary): 'cat/ear' and what 'grasp' expands to beyond its classes are warned
    about once, listed in result.json, marked per part and in the printed line."""
    from partclipseg.defaults import BUNDLED_CHECKPOINT

    assert main(["segment", "--sample", "chelsea", "--sample", "coffee", "--checkpoint", str(BUNDLED_CHECKPOINT),
                 "--query", "cat/ear; grasp; pot/lid", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("never trained on cat/ear, knob (from grasp), grip (from grasp)") == 1
    summary = json.loads((tmp_path / "chelsea" / "result.json").read_text())
    assert summary["vocabulary"] == "closed" and summary["unknown_queries"] == ["cat/ear", "knob", "grip"]
    assert [p["unknown_query"] for p in summary["parts"]] == [True, False, True, True, False]
    assert "cat/ear: " in captured.out and "(not learned)" in captured.out


def test_wrong_checkpoint_files_are_one_clear_line(tmp_path, capsys):
    for name, content, cause in (("empty.pth", b"", "the file is empty (0 bytes)"),
                                 ("photo.pth", cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes(),
                                  "not a PyTorch checkpoint: it looks like a PNG image")):
        (tmp_path / name).write_bytes(content)
        assert main(["segment", "--sample", "coffee", "--checkpoint", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and cause in err and "Traceback" not in err and "trust" not in err


def test_ros_segment_refuses_a_query_that_ros_would_cut_short(capsys):
    from partclipseg_ros.cli import main as ros_main

    assert ros_main(["segment", "--random-weights", "tiny", "--queries", "pot\x00handle"]) == 2
    assert "would arrive cut short as 'pot'" in capsys.readouterr().err
