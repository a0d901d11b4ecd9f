"""``partclipseg synth | train | eval`` end to end, and their one-line errors."""
import json

from conftest import make_tiny
from partclipseg.checkpoint import load_checkpoint, save_official
from partclipseg.cli import main


def test_synth_train_eval_chain(tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["synth", str(data), "--train", "3", "--val", "2", "--size", "96x72", "--objects", "mug", "knife",
                 "--unseen", "knife", "--quiet"]) == 0
    assert (data / "classes.txt").read_text().split() == ["mug/body", "mug/handle", "knife/blade", "knife/handle"]
    weights = tmp_path / "w.pth"
    assert main(["train", str(data), "--out", str(run), "--random-init", "tiny", "--size", "reduce_dim=32",
                 "--iterations", "2", "--batch-size", "1", "--train-towers", "vision", "--freeze-text",
                 "--clip-norm", "1", "--background-weight", "1", "--balance-objects", "--balance-parts",
                 "--object-weight", "4", "--export", str(weights), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 classes" in out and "2 iterations" in out and "weights ->" in out  # knife is unseen: not trained
    config = json.loads((run / "summary.json").read_text())["config"]
    assert (config["towers"], config["freeze_text"], config["clip_norm"], config["loss"]["background_weight"],
            config["loss"]["balance_objects"], config["loss"]["balance_parts"], config["loss"]["object_weight"]
            ) == ("vision", True, 1.0, 1.0, True, True, 4.0)
    assert load_checkpoint(weights).config.reduce_dim == 32
    assert load_checkpoint(weights).vocabulary == "closed"  # from scratch: it knows its classes only
    assert main(["train", str(data), "--out", str(run), "--resume", "--iterations", "3", "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().out
    # a new run may start from another run's resumable checkpoint (docs/training.md's second stage does)
    assert main(["train", str(data), "--out", str(tmp_path / "run2"), "--init", str(run / "last.pth"),
                 "--iterations", "1", "--batch-size", "1", "--quiet"]) == 0
    assert "1 iterations" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "run2" / "last.pth").vocabulary == "closed"  # inherited
    # fine-tuning open weights (an official-layout file: no classes, no mark) keeps them open
    official = save_official(make_tiny(), tmp_path / "official.pth")
    assert main(["train", str(data), "--out", str(tmp_path / "run3"), "--init", str(official),
                 "--iterations", "1", "--batch-size", "1", "--quiet"]) == 0
    tuned = load_checkpoint(tmp_path / "run3" / "last.pth")
    assert tuned.vocabulary == "open" and [c.name for c in tuned.trained_classes] == ["mug/body", "mug/handle"]
    capsys.readouterr()
    scores = tmp_path / "scores.json"
    assert main(["eval", str(data), "--checkpoint", str(weights), "--json", str(scores), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "Pred-All" in table and "Oracle-Obj" in table and "knife/blade" in table
    result = json.loads(scores.read_text())
    assert set(result["protocols"]) == {"pred-all", "oracle"} and "h-IoU" in result["protocols"]["oracle"]
    assert result["weights"].startswith("partclipseg weights from w.pth")


def test_errors_are_one_clear_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", str(empty), "--out", str(tmp_path / "r"), "--random-init", "tiny"]) == 2
    assert "not a dataset folder" in capsys.readouterr().err
    data = tmp_path / "data"
    assert main(["synth", str(data), "--train", "1", "--val", "0", "--size", "64x48", "--quiet"]) == 0
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run)]) == 2
    assert "give the starting weights" in capsys.readouterr().err
    assert main(["train", str(data), "--out", str(run), "--resume"]) == 2
    assert "no resumable training checkpoint" in capsys.readouterr().err
    assert main(["train", str(data), "--out", str(run), "--random-init", "tiny", "--size", "width=9"]) == 2
    assert "--size" in capsys.readouterr().err
    run.mkdir()
    (run / "last.pth").write_bytes(b"")
    assert main(["train", str(data), "--out", str(run), "--random-init", "tiny"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(["eval", str(data), "--split", "val", "--random-weights", "tiny"]) == 2
    assert "split 'val' not found (splits here: ['train'])" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "s"), "--size", "big"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
