"""ONNX export and its CPU validation: checker, explicit dims, folding, TensorRT 10 allow-list, fp16 conversion."""
import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from conftest import make_tiny
from partclipseg.backends import BackendOptions
from partclipseg.backends.ort_backend import OnnxRuntimeBackend
from partclipseg.cli import main
from partclipseg.onnx.export import ExportedGraphs, _read_manifest, cache_folder, file_sha256
from partclipseg.model.stages import decoder_spec, encoder_spec, text_spec
from partclipseg.onnx.checks import GraphError, tensorrt_problems, validate
from partclipseg.onnx.fp16 import FP32_OPS, convert_to_fp16
from partclipseg.segmenter import Segmenter

QUERIES = "pot/handle; knife/blade; handle; cup/rim; jar/lid"


def _with_node_after_main(model: onnx.ModelProto, node_type: str, extra_inputs: list, **attrs) -> onnx.ModelProto:
    """A copy of the decoder whose ``main`` output passes through one more (shape-preserving) node."""
    planted = onnx.ModelProto()
    planted.CopyFrom(model)
    for node in planted.graph.node:
        node.output[:] = ["main_raw" if o == "main" else o for o in node.output]
    names = []
    for i, values in enumerate(extra_inputs):
        names.append(f"planted_{i}")
        planted.graph.initializer.append(onnx.numpy_helper.from_array(values, names[-1]))
    planted.graph.node.append(helper.make_node(node_type, ["main_raw", *names], ["main"], name="planted", **attrs))
    return planted


def test_graphs_are_deployable(tiny_graphs):
    config = make_tiny().config
    for stage, spec in (("encoder", encoder_spec(config)), ("decoder", decoder_spec(config)), ("text", text_spec(config))):
        model = validate(tiny_graphs.path(stage), spec)
        assert [o.version for o in model.opset_import if o.domain == ""] == [18]
        assert not [n for n in model.graph.node if n.op_type in ("Resize", "Loop", "ScatterND", "Attention")]
        assert file_sha256(tiny_graphs.path(stage)) == tiny_graphs.sha256[stage]
    encoder = onnx.load(str(tiny_graphs.encoder))
    tables = [t for t in encoder.graph.initializer if list(t.dims) == [config.tokens, config.vision_width]]
    assert len(tables) == 1  # the 22x22+1 positional table is a weight, not computed in the graph
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in onnx.load(str(tiny_graphs.decoder)).graph.input}
    assert dims == {"features": [3, 1, 485, 64], "film_mul": ["prompts", 64], "film_add": ["prompts", 64],
                    "head_index": ["head_rows"], "pair_index": ["pair_rows", 2], "pair_film_mul": ["pair_rows", 64],
                    "pair_film_add": ["pair_rows", 64]}
    text = onnx.load(str(tiny_graphs.text)).graph
    assert [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*text.input, *text.output)] \
        == [["texts", "text_tokens"], ["texts", config.projection_dim]]


def test_validation_catches_a_planted_unsupported_op(tiny_graphs, tmp_path):
    spec = decoder_spec(make_tiny().config)
    decoder = onnx.load(str(tiny_graphs.decoder))
    crop = _with_node_after_main(decoder, "CenterCropPad", [np.array([352, 352], np.int64)], axes=[2, 3])
    onnx.save(crop, str(tmp_path / "crop.onnx"))
    with pytest.raises(GraphError, match="operator CenterCropPad \\(1 nodes\\) is not supported by TensorRT 10"):
        validate(tmp_path / "crop.onnx", spec)

    cubic = _with_node_after_main(decoder, "Resize", [np.zeros(0, np.float32), np.ones(4, np.float32)], mode="cubic")
    onnx.save(cubic, str(tmp_path / "cubic.onnx"))
    with pytest.raises(GraphError, match="uses mode cubic"):
        validate(tmp_path / "cubic.onnx", spec)

    custom = _with_node_after_main(decoder, "Identity", [])
    custom.graph.node[-1].domain = "com.example"
    custom.opset_import.append(helper.make_opsetid("com.example", 1))
    assert tensorrt_problems(custom) == ["operator com.example::Identity (1 nodes) is not supported by TensorRT 10"]
    newer = onnx.ModelProto()
    newer.CopyFrom(decoder)
    newer.opset_import[0].version = 23
    assert "opset 23 is outside TensorRT 10's 9..20" in tensorrt_problems(newer)


def test_validation_catches_unfolded_constants_and_wrong_dims(tiny_graphs, tmp_path):
    spec = decoder_spec(make_tiny().config)
    decoder = onnx.load(str(tiny_graphs.decoder))
    unfolded = onnx.ModelProto()
    unfolded.CopyFrom(decoder)
    consumer = next(n for n in unfolded.graph.node if n.op_type == "MatMul")
    weight = next(name for name in consumer.input if name in {t.name for t in unfolded.graph.initializer})
    consumer.input[list(consumer.input).index(weight)] = "weight_via_identity"
    unfolded.graph.node.insert(0, helper.make_node("Identity", [weight], ["weight_via_identity"], name="id"))
    onnx.save(unfolded, str(tmp_path / "unfolded.onnx"))
    with pytest.raises(GraphError, match="Identity 'id' could be folded"):
        validate(tmp_path / "unfolded.onnx", spec)

    fixed = onnx.ModelProto()
    fixed.CopyFrom(decoder)
    fixed.graph.input[1].type.tensor_type.shape.dim[0].dim_value = 33  # rows no longer dynamic
    onnx.save(fixed, str(tmp_path / "fixed.onnx"))
    with pytest.raises(GraphError, match=r"film_mul: dims \[33, 64\], expected \['prompts', 64\]"):
        validate(tmp_path / "fixed.onnx", spec)


def test_fp16_graphs_keep_norms_in_fp32_and_match_torch(tiny_graphs, tmp_path, rgb_image):
    model = make_tiny()
    config = model.config
    for stage, spec in (("encoder", encoder_spec(config)), ("decoder", decoder_spec(config))):
        converted = convert_to_fp16(onnx.load(str(tiny_graphs.path(stage))))
        onnx.save(converted, str(tmp_path / f"{stage}.onnx"))
        validate(tmp_path / f"{stage}.onnx", spec)  # fp32 inputs/outputs, TensorRT operators, checker
        types = {v.name: v.type.tensor_type.elem_type for v in converted.graph.value_info}
        types.update({t.name: t.data_type for t in converted.graph.initializer})
        types.update({v.name: v.type.tensor_type.elem_type for v in converted.graph.input})
        norms = [n for n in converted.graph.node if n.op_type in FP32_OPS]
        matmuls = [n for n in converted.graph.node if n.op_type == "MatMul"]
        assert norms and matmuls
        assert all(types[name] == TensorProto.FLOAT for n in norms for name in n.input if name)
        assert all(types[name] == TensorProto.FLOAT16 for n in matmuls for name in n.input)
    shutil.copyfile(tiny_graphs.text, tmp_path / "text.onnx")  # the text encoder stays fp32 at every precision
    sha = {stage: file_sha256(tmp_path / f"{stage}.onnx") for stage in ("encoder", "decoder", "text")}
    graphs = ExportedGraphs(tmp_path, "fp16", tiny_graphs.max_queries, tiny_graphs.opset, sha)
    reference, fp16 = Segmenter(model), Segmenter(model, OnnxRuntimeBackend(model, BackendOptions(precision="fp16"), graphs=graphs))
    reference.set_queries(QUERIES)
    fp16.set_queries(QUERIES)
    want, got = reference.segment(rgb_image), fp16.segment(rgb_image)
    relative = float((got.logits - want.logits).abs().max() / want.logits.abs().max())
    assert 1e-6 < relative < 5e-3  # really rounded to fp16, and close
    assert np.mean(got.labels == want.labels) > 0.98


def test_cache_key_follows_weights_config_and_settings(tmp_path):
    model = make_tiny()
    folder, _ = cache_folder(model, tmp_path)
    assert folder.parent == tmp_path / "onnx" and folder.name.endswith("-fp32")
    assert cache_folder(make_tiny(), tmp_path)[0] == folder  # same weights, same key
    assert cache_folder(model, tmp_path, "fp16")[0] != folder
    assert cache_folder(model, tmp_path, max_queries=8)[0] != folder
    assert cache_folder(model, tmp_path, opset=17)[0] != folder
    assert cache_folder(make_tiny(part_obj_mlp_layers=2), tmp_path)[0] != folder
    with torch.no_grad():
        model.decoder.film_mul.bias[0] += 1e-3
    assert cache_folder(model, tmp_path)[0] != folder


def test_cached_export_is_reused_and_a_damaged_one_is_not(tiny_graphs, tmp_path):
    model = make_tiny()
    folder, settings = cache_folder(model, tiny_graphs.folder.parent.parent)
    assert folder == tiny_graphs.folder
    assert _read_manifest(folder, settings) == tiny_graphs
    assert _read_manifest(folder, {**settings, "opset": 17}) is None
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("encoder.onnx", "decoder.onnx", "text.onnx", "manifest.json"):
        (damaged / name).write_bytes((folder / name).read_bytes())
    (damaged / "decoder.onnx").write_bytes((folder / "decoder.onnx").read_bytes()[:1000])
    assert _read_manifest(damaged, settings) is None
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["settings"]["model"] == settings["model"] and set(manifest["sha256"]) == {"encoder", "decoder", "text"}


def test_export_command(tmp_path, capsys):
    assert main(["export", "--random-weights", "tiny", "--out", str(tmp_path), "--precision", "fp32", "fp16",
                 "--max-queries", "4"]) == 0
    out = capsys.readouterr().out
    for precision in ("fp32", "fp16"):
        for stage in ("encoder", "decoder"):
            assert (tmp_path / precision / f"{stage}.onnx").exists()
            assert f"{precision} {stage}: {tmp_path / precision / stage}.onnx" in out
    assert "ONNX Runtime (CPU) vs torch fp32" in out and "False" not in out
    assert main(["export", "--random-weights", "tiny", "--out", str(tmp_path), "--max-queries", "1"]) == 2
    assert "max_queries >= 2" in capsys.readouterr().err
