"""int8 graphs for ONNX Runtime on the CPU: how they are made and checked, and what they cost in quality
(docs/deployment.md, "int8 graphs")."""
import json

import onnx
import pytest
import torch

from conftest import make_tiny
from partclipseg.backends import BackendOptions, BackendUnavailable, make_backend
from partclipseg.cli import main
from partclipseg.data.samples import SAMPLES
from partclipseg.gate import measure
from partclipseg.model.stages import decoder_spec, encoder_spec
from partclipseg.onnx.checks import GraphError, tensorrt_problems, validate
from partclipseg.onnx.export import cached_graphs
from partclipseg.segmenter import Segmenter


@pytest.fixture(scope="module")
def int8_graphs(onnx_cache, tiny_graphs):
    return cached_graphs(make_tiny(), onnx_cache, "int8")


def test_int8_graphs_quantize_weight_matmuls_only(int8_graphs, tiny_graphs):
    config = make_tiny().config
    for stage, spec in (("encoder", encoder_spec(config)), ("decoder", decoder_spec(config))):
        model = validate(int8_graphs.path(stage), spec, tensorrt=False)  # checker, declared I/O, nothing to fold
        ops = [n.op_type for n in model.graph.node]
        weights = {t.name for t in model.graph.initializer}
        assert ops.count("MatMulInteger") > 0 and "DynamicQuantizeLinear" in ops
        assert not {"ConvInteger", "QLinearConv"} & set(ops)  # convolutions stay float
        float_matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
        assert float_matmuls and all(n.input[1] not in weights for n in float_matmuls)  # attention stays float
        assert tensorrt_problems(model)  # ONNX Runtime only: TensorRT could not parse it
        with pytest.raises(GraphError, match="not supported by TensorRT 10"):
            validate(int8_graphs.path(stage), spec)
    assert int8_graphs.sha256["text"] == tiny_graphs.sha256["text"]  # the text encoder stays fp32
    manifest = json.loads((int8_graphs.folder / "manifest.json").read_text())
    assert manifest["settings"]["precision"] == "int8" and manifest["settings"]["int8"]["ops"] == ["MatMul", "Gemm"]
    assert "onnxruntime" in manifest["settings"]


def test_int8_on_the_official_layout_tiny_model_is_close_to_fp32(int8_graphs, onnx_cache, rgb_image):
    """Logits error of int8 against torch fp32 on the official-layout tiny checkpoint (random weights; measured
    2.2e-2 of the largest logit)."""
    model = make_tiny()
    reference = Segmenter(model)
    int8 = Segmenter(model, make_backend("onnxruntime", model, BackendOptions(precision="int8",
                                                                              cache_dir=str(onnx_cache))))
    for segmenter in (reference, int8):
        segmenter.set_queries("pot/handle; knife/blade; handle")
    want, got = reference.segment(rgb_image), int8.segment(rgb_image)
    relative = float((got.logits - want.logits).abs().max() / want.logits.abs().max())
    assert 1e-4 < relative < 0.1  # really quantized, and close


def test_int8_agrees_with_fp32_on_the_bundled_models_photos(bundled_model, onnx_cache):
    """Label agreement of int8 with torch fp32 on every bundled sample photo, with the trained model (measured:
    99.5 % at worst, chelsea)."""
    int8 = make_backend("onnxruntime", bundled_model, BackendOptions(precision="int8", cache_dir=str(onnx_cache)))
    agreement = measure(bundled_model, int8, "int8").agreement
    assert set(agreement) == set(SAMPLES)
    assert min(agreement.values()) >= 0.99, agreement
    assert min(agreement.values()) < 1.0  # the graphs are really quantized


def test_int8_runs_on_the_cpu_only(tiny_model, onnx_cache):
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="int8 graphs run on the CPU"):
            make_backend("onnxruntime", tiny_model, BackendOptions(device="cuda", precision="int8",
                                                                   cache_dir=str(onnx_cache)))
    with pytest.raises(BackendUnavailable, match="fp32, fp16 or bf16"):
        make_backend("torch", tiny_model, BackendOptions(precision="int8"))


def test_export_command_writes_and_checks_int8(tmp_path, capsys):
    assert main(["export", "--random-weights", "tiny", "--out", str(tmp_path), "--precision", "fp32", "int8",
                 "--max-queries", "4"]) == 0
    out = capsys.readouterr().out
    for stage in ("encoder", "decoder", "text"):
        assert (tmp_path / "int8" / f"{stage}.onnx").exists()
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == ["int8"] and ":" not in line]
    assert rows and all(row[-1] == "True" for row in rows), out  # parity within the int8 tolerance
    assert onnx.load(str(tmp_path / "int8" / "encoder.onnx")).graph.node
