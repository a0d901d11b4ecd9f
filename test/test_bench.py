"""`partclipseg bench`: one benchmark for every variant (frame time, query changes, HF CLIPSeg in the same run, the
goals) and, with --quality, what each precision costs against fp32."""
import json

from partclipseg.cli import main
from partclipseg.data.synth import generate
from partclipseg.defaults import BUNDLED_OBJECTS


def test_bench_rows_carry_every_variant_and_the_baseline(tmp_path, capsys):
    generate(tmp_path / "val", train=0, val=3, seed=7, objects=list(BUNDLED_OBJECTS), progress=False)
    assert main(["bench", "--size", "tiny", "--queries", "1", "8", "--repeats", "1", "--resolution", "160x120",
                 "--variants", "torch/fp32", "onnxruntime/int8", "auto", "--quality", "--val", str(tmp_path / "val"),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["resolution"] == "160x120" and not report["skipped"]
    rows = report["rows"]
    assert [(r["variant"], r["queries"]) for r in rows] == [(v, q) for v in ("torch/fp32", "onnxruntime/int8", "auto")
                                                           for q in (1, 8)]
    for row in rows:
        stages = sum(row[f"{s}_ms"] for s in ("preprocess", "encode", "decode", "postprocess"))
        assert 0 < stages <= row["frame_ms"] * 1.5 + 5  # frame = the four stages (medians, timed separately)
        assert 0 < row["text_ms_on_change"] < row["first_answer_ms"]
        assert row["hf_frame_ms"] > 0 and row["speedup_vs_hf"] > 0  # HF CLIPSeg measured in the same run
    assert {r["runs"] for r in rows if r["variant"] == "onnxruntime/int8"} == {"onnxruntime cpu int8"}
    assert [r["queries"] for r in report["postprocess"]] == [1, 8]
    assert [g["goal"] for g in report["goals"]] == ["auto frame, Q=8", "auto speed-up vs HF CLIPSeg, Q=8",
                                                    "auto query change -> first answer, Q=8"]  # no Q=16 measured
    assert all(isinstance(g["met"], bool) for g in report["goals"])
    quality = {r["variant"]: r for r in report["quality"]}
    assert quality["torch/fp32"]["labels_agree_min_%"] == 100.0 and quality["torch/fp32"]["pred_all_delta"] == 0.0
    assert quality["onnxruntime/int8"]["runs"] == "onnxruntime cpu int8"
    assert 99.0 <= quality["onnxruntime/int8"]["labels_agree_min_%"] < 100.0  # the bundled model's worst photo
    assert quality["auto"]["runs"] == "onnxruntime cpu int8"  # the bundled model passes the gate
    assert float(quality["onnxruntime/int8"]["tiny_logits_rel_err"]) > 0
