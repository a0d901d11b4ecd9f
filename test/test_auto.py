"""backend/device/precision auto (the CLI's and the node's defaults) and the per-checkpoint quality gate of reduced
precision (docs/deployment.md, "backend auto")."""
import json
import logging

import numpy as np
import pytest

import partclipseg.auto
import partclipseg.gate
from conftest import break_int8
from partclipseg.auto import candidates
from partclipseg.backends import BackendOptions, BackendUnavailable, make_backend
from partclipseg.cli import main
from partclipseg.data.samples import load_sample
from partclipseg.defaults import BUNDLED_CHECKPOINT
from partclipseg.factory import Weights, open_backend
from partclipseg.segmenter import Segmenter

AUTO = BackendOptions(device="auto", precision="auto")


def test_auto_runs_int8_for_a_checkpoint_whose_labels_it_keeps(onnx_cache, monkeypatch):
    """The bundled model passes the gate on the CPU: ONNX Runtime int8, with the verdict cached by fingerprint and
    reused on the next start (not measured again)."""
    model, backend, _ = open_backend(Weights(checkpoint=str(BUNDLED_CHECKPOINT)), "auto", AUTO)
    assert (backend.name, backend.precision) == ("onnxruntime", "int8")
    assert "no GPU; ONNX Runtime is the fastest CPU backend" in backend.selection
    assert "int8 labels agree with fp32 on 99." in backend.selection and ">= 99 % needed" in backend.selection
    verdicts = [json.loads(p.read_text()) for p in (onnx_cache / "gate").glob("*.json")]
    assert any(v["verdict"]["precision"] == "int8" and v["settings"]["backend"] == backend.describe() for v in verdicts)

    monkeypatch.setattr(partclipseg.gate, "measure", lambda *a: pytest.fail("the cached verdict was measured again"))
    _, again, _ = open_backend(Weights(checkpoint=str(BUNDLED_CHECKPOINT)), "auto", AUTO)
    assert again.selection == backend.selection


def test_auto_falls_back_to_fp32_when_int8_changes_the_labels(onnx_cache, bundled_model, caplog):
    """A checkpoint whose fp32 output is the bundled model's but whose int8 graphs disagree: the gate fails, fp32
    runs, and the log and the selection say why."""
    model = break_int8(_copy(bundled_model))
    with caplog.at_level(logging.WARNING, logger="partclipseg"):
        backend = partclipseg.auto.open_auto(model, "auto", AUTO.replace(cache_dir=str(onnx_cache)))
    assert (backend.name, backend.precision) == ("onnxruntime", "fp32")
    assert "precision auto: fp32, because int8 labels agree with fp32 on" in backend.selection
    assert "< 99 % needed" in backend.selection
    assert any("running fp32 instead, exact" in r.getMessage() for r in caplog.records)
    reference, chosen = Segmenter(bundled_model), Segmenter(model, backend)
    image = load_sample("kitchen")
    for segmenter in (reference, chosen):
        segmenter.set_queries("pot/lid; pot/handle; spatula/handle")
    assert np.mean(reference.segment(image).labels == chosen.segment(image).labels) > 0.999  # the fp32 output


def _copy(model):
    clone = model.__class__(model.config).eval()
    clone.load_state_dict(model.state_dict())
    clone.trained_classes = model.trained_classes
    return clone


def test_explicit_fp32_is_the_exact_mode_and_skips_the_gate(monkeypatch):
    monkeypatch.setattr(partclipseg.gate, "check", lambda *a: pytest.fail("fp32 was gated"))
    _, backend, _ = open_backend(Weights(random="tiny"), "auto", AUTO.replace(precision="fp32"))
    assert (backend.name, backend.precision) == ("onnxruntime", "fp32")
    assert backend.selection.endswith("precision fp32 as configured")
    _, torch_backend, _ = open_backend(Weights(random="tiny"), "torch", AUTO)
    assert torch_backend.describe() == "torch cpu fp32"  # torch on the CPU: never reduced by auto
    assert "no reduced precision is gated for torch on cpu" in torch_backend.selection


def test_without_onnxruntime_auto_runs_torch_and_says_why(monkeypatch):
    monkeypatch.setattr(partclipseg.auto, "_installed", lambda *modules: "onnxruntime" not in modules
                        and "tensorrt" not in modules)
    assert [c[:2] for c in candidates("auto")] == [("torch", "cpu")]
    _, backend, _ = open_backend(Weights(random="tiny"), "auto", AUTO)
    assert backend.describe() == "torch cpu fp32"
    assert "onnxruntime, onnx or onnxscript is not installed" in backend.selection


def test_the_order_on_a_gpu_machine(monkeypatch):
    monkeypatch.setattr(partclipseg.auto.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(partclipseg.auto, "_installed", lambda *modules: True)
    assert [c[:2] for c in candidates("auto")] == [("tensorrt", "cuda"), ("torch", "cuda"), ("onnxruntime", "cpu"),
                                                   ("torch", "cpu")]
    assert [c[:2] for c in candidates("cuda:1")] == [("tensorrt", "cuda:1"), ("torch", "cuda:1")]
    assert [c[:2] for c in candidates("cpu")] == [("onnxruntime", "cpu"), ("torch", "cpu")]
    monkeypatch.setattr(partclipseg.auto, "_installed", lambda *modules: "tensorrt" not in modules)
    assert candidates("auto")[0][:2] == ("torch", "cuda") and "without TensorRT" in candidates("auto")[0][2]


def test_a_backend_that_cannot_start_gives_way_to_the_next(caplog):
    def make(name, model, options):
        if name == "onnxruntime":
            raise BackendUnavailable("no room for the export")
        return make_backend(name, model, options)

    with caplog.at_level(logging.WARNING, logger="partclipseg"):
        _, backend, _ = open_backend(Weights(random="tiny"), "auto", AUTO, make)
    assert backend.describe() == "torch cpu fp32" and "ONNX Runtime could not start" in backend.selection
    assert any("onnxruntime on cpu cannot start (no room for the export)" in r.getMessage() for r in caplog.records)


def test_make_backend_builds_concrete_backends_only(tiny_model):
    with pytest.raises(BackendUnavailable, match="'auto' is resolved on start-up by partclipseg.factory"):
        make_backend("auto", tiny_model)
    with pytest.raises(BackendUnavailable, match="'auto' is resolved"):
        make_backend("torch", tiny_model, BackendOptions(precision="auto"))
    with pytest.raises(BackendUnavailable, match="torch_compile is an option of the torch backend only, not of auto"):
        open_backend(Weights(random="tiny"), "auto", AUTO.replace(torch_compile=True))


def test_segment_command_defaults_to_auto_and_fp32_is_one_flag_away(tmp_path, caplog):
    """The CLI's default (auto) on the bundled model, and --precision fp32: result.json says which ran and why."""
    runs = {}
    for name, extra in (("auto", []), ("exact", ["--precision", "fp32"])):
        with caplog.at_level(logging.INFO, logger="partclipseg"):
            assert main(["segment", "--sample", "kitchen", "--checkpoint", str(BUNDLED_CHECKPOINT),
                         "--out", str(tmp_path / name), *extra]) == 0
        runs[name] = json.loads((tmp_path / name / "result.json").read_text())
    assert (runs["auto"]["backend"], runs["auto"]["device"], runs["auto"]["precision"]) == ("onnxruntime", "cpu", "int8")
    assert runs["auto"]["runs_on"].startswith("onnxruntime cpu int8")
    assert "precision auto: int8 labels agree with fp32" in runs["auto"]["backend_choice"]
    assert runs["exact"]["runs_on"].startswith("onnxruntime cpu fp32") and runs["exact"]["precision"] == "fp32"
    assert any(r.getMessage().startswith("backend: onnxruntime cpu int8") for r in caplog.records)  # logged
