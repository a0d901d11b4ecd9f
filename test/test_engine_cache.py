"""TensorRT engine cache rules (no TensorRT needed): key, sidecar, rebuild decision, profile, bindings, absence."""
import dataclasses
import json
import sys

import pytest
import torch

from partclipseg.backends import BackendOptions, BackendUnavailable, make_backend
from partclipseg.backends.engine_cache import (
    EngineKey, binding_problems, engine_path, fp16_mode, profile_shapes, rebuild_reason, sha256_bytes, sidecar_path,
    write_sidecar,
)
from partclipseg.cli import main
from partclipseg.model.stages import decoder_spec, encoder_spec
from partclipseg.model import ModelConfig, tiny_config

KEY = EngineKey(
    stage="decoder", onnx_sha256="a" * 64, tensorrt_version="10.3.0", gpu_name="Orin", compute_capability="8.7",
    platform="aarch64 Linux R36 (release), REVISION: 3.0", precision="fp16", fp16_mode="builder-flag",
    input_size=352, max_queries=16,
)
CHANGES = {
    "stage": "encoder", "onnx_sha256": "b" * 64, "tensorrt_version": "10.7.0", "gpu_name": "NVIDIA GeForce RTX 4090",
    "compute_capability": "8.9", "platform": "x86_64 Linux", "precision": "fp32", "fp16_mode": "strongly-typed",
    "input_size": 224, "max_queries": 8, "format": 2,
}


@pytest.fixture
def built(tmp_path):
    """An 'engine' file with a sidecar written as a build would."""
    path = engine_path(tmp_path, "decoder", "fp16")
    data = bytes(range(256)) * 64
    path.write_bytes(data)
    write_sidecar(path, KEY, sha256_bytes(data), 12.3)
    return path


def test_every_key_component_is_covered():
    assert set(CHANGES) == {f.name for f in dataclasses.fields(EngineKey)}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_key_changes_with_each_component_and_forces_a_rebuild(built, field):
    changed = dataclasses.replace(KEY, **{field: CHANGES[field]})
    assert changed != KEY
    reason = rebuild_reason(built, changed)
    assert reason is not None and f"{field}:" in reason
    assert f"{KEY.to_dict()[field]} -> {CHANGES[field]}" in reason


def test_matching_engine_is_used(built):
    assert rebuild_reason(built, KEY) is None


def test_corrupt_engine_file_forces_a_rebuild(built):
    data = bytearray(built.read_bytes())
    data[100] ^= 0xFF
    built.write_bytes(bytes(data))
    assert "corrupt" in rebuild_reason(built, KEY)
    built.write_bytes(bytes(data[:1000]))  # truncated copy
    assert "corrupt" in rebuild_reason(built, KEY)


@pytest.mark.parametrize("sidecar_text", ["{not json", json.dumps({"key": {"stage": "decoder"}}), json.dumps([1, 2]), ""])
def test_corrupt_sidecar_forces_a_rebuild(built, sidecar_text):
    sidecar_path(built).write_text(sidecar_text)
    assert "sidecar" in rebuild_reason(built, KEY) and "corrupt" in rebuild_reason(built, KEY)


def test_missing_engine_or_sidecar_forces_a_rebuild(built):
    sidecar_path(built).unlink()
    assert "no sidecar" in rebuild_reason(built, KEY)
    built.unlink()
    assert "no engine" in rebuild_reason(built, KEY)


def test_fp16_mode_follows_the_builder_flag():
    assert fp16_mode(has_fp16_flag=True) == "builder-flag"  # TensorRT 10
    assert fp16_mode(has_fp16_flag=False) == "strongly-typed"  # TensorRT 11


def test_profile_spans_one_row_to_qmax():
    config = ModelConfig()
    profile = profile_shapes(decoder_spec(config), config, 16)
    assert profile["features"] == ((3, 1, 485, 64),) * 3
    assert profile["film_mul"] == ((1, 64), (17, 64), (33, 64))
    assert profile["head_index"] == ((1,), (17,), (33,))
    assert profile["pair_index"] == ((1, 2), (9, 2), (17, 2))
    assert list(profile) == decoder_spec(config).input_names
    clipseg = tiny_config("clipseg")
    assert profile_shapes(decoder_spec(clipseg), clipseg, 16)["film_mul"] == ((1, 64), (8, 64), (16, 64))
    assert profile_shapes(encoder_spec(config), config, 16) == {"pixel_values": ((1, 3, 352, 352),) * 3}


def test_binding_check_catches_engines_of_other_graphs():
    spec = decoder_spec(ModelConfig())
    good = [(t.name, t in spec.inputs, t.dtype, tuple(-1 if isinstance(d, str) else d for d in t.dims))
            for t in spec.inputs + spec.outputs]
    assert binding_problems(spec, good) == []
    renamed = [("film", *good[1][1:])] + good[:1] + good[2:]
    assert "differ" in binding_problems(spec, renamed)[0]
    wrong_dtype = [good[0], (good[1][0], True, torch.float16, good[1][3])] + good[2:]
    assert binding_problems(spec, wrong_dtype) == ["film_mul has dtype torch.float16, expected torch.float32"]
    wrong_shape = [(good[0][0], True, torch.float32, (3, 1, 485, 32))] + good[1:]
    assert "shape" in binding_problems(spec, wrong_shape)[0]
    clipseg_engine = [io for io in good if not io[0].startswith("pair")]
    assert binding_problems(spec, clipseg_engine)


def test_missing_tensorrt_gives_the_reason_and_what_to_install(tiny_model, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail even where it is installed
    with pytest.raises(BackendUnavailable, match="tensorrt package is not installed.*JetPack"):
        make_backend("tensorrt", tiny_model, BackendOptions(device="cuda", precision="fp16"))
    assert main(["build-engine", "--random-weights", "tiny"]) == 2
    assert "tensorrt package is not installed" in capsys.readouterr().err
