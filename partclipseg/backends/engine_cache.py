"""TensorRT engine cache rules, free of TensorRT so they are unit-tested on any machine.

An engine is only valid for the ONNX file, TensorRT version, GPU model and platform it was built with (engines
copied between machines fail with "Version tag does not match"). Each engine ``<stage>.<precision>.engine`` has a
sidecar ``<stage>.<precision>.engine.json`` holding its :class:`EngineKey` and the engine file's sha256;
:func:`rebuild_reason` says why an engine must be rebuilt (missing, no or corrupt sidecar, key mismatch, corrupt
engine file), or None when it may be used. The optimisation profile and the binding check come from
:mod:`partclipseg.model.stages`, the one definition of the graphs' tensors.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from ..model.stages import GraphSpec, RowBounds, row_bounds
from ..model.config import ModelConfig

ENGINE_FORMAT = 1  # bump when the engine layout or build settings change meaning
OPT_QUERIES = 8  # the optimisation profile's "opt" shapes: a typical robot query set
JETSON_RELEASE_FILE = Path("/etc/nv_tegra_release")
FP16_MODES = ("strongly-typed", "builder-flag")


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on. Two engines are interchangeable only if their keys are equal."""

    stage: str  # "encoder" or "decoder"
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # e.g. "8.7" (Orin), "9.0" (H100)
    platform: str  # machine + Jetson L4T release where there is one
    precision: str  # "fp32" or "fp16"
    fp16_mode: str | None  # how fp16 was obtained: FP16_MODES, None for fp32
    input_size: int
    max_queries: int
    format: int = ENGINE_FORMAT

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def differences(self, other: "EngineKey") -> list[str]:
        """Human-readable "field: other -> self" for every field that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{name}: {theirs[name]} -> {mine[name]}" for name in mine if mine[name] != theirs[name]]


def platform_tag() -> str:
    """CPU architecture and OS, plus the L4T release on a Jetson (engines do not move between JetPacks)."""
    tag = f"{platform.machine()} {platform.system()}"
    if JETSON_RELEASE_FILE.exists():
        tag += " " + JETSON_RELEASE_FILE.read_text().splitlines()[0].strip("# ").strip()
    return tag


def gpu_identity(device: torch.device) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of a CUDA device."""
    major, minor = torch.cuda.get_device_capability(device)
    return torch.cuda.get_device_name(device), f"{major}.{minor}"


def fp16_mode(has_fp16_flag: bool) -> str:
    """TensorRT 11 removed ``BuilderFlag.FP16``: fp16 then comes from an fp16 ONNX in a strongly typed network.
    TensorRT 10 still has it: the fp32 ONNX is built with the flag, normalisation/softmax layers pinned to fp32."""
    return "builder-flag" if has_fp16_flag else "strongly-typed"


def engine_path(folder: Path, stage: str, precision: str) -> Path:
    return Path(folder) / f"{stage}.{precision}.engine"


def sidecar_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def timing_cache_path(folder: Path, tensorrt_version: str, compute_capability: str) -> Path:
    """One timing cache per TensorRT version and GPU architecture, beside the engines (speeds up rebuilds)."""
    return Path(folder) / f"timing-trt{tensorrt_version}-sm{compute_capability.replace('.', '')}.cache"


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def write_sidecar(engine: Path, key: EngineKey, engine_sha256: str, build_seconds: float) -> None:
    record = {"key": key.to_dict(), "engine_sha256": engine_sha256, "build_seconds": round(build_seconds, 1)}
    sidecar_path(engine).write_text(json.dumps(record, indent=2) + "\n")


def rebuild_reason(engine: Path, key: EngineKey) -> str | None:
    """Why the engine at ``engine`` cannot be used for ``key`` (None: it can)."""
    if not engine.exists():
        return f"no engine at {engine}"
    sidecar = sidecar_path(engine)
    if not sidecar.exists():
        return f"{engine.name} has no sidecar {sidecar.name}: unknown origin"
    try:
        record = json.loads(sidecar.read_text())
        built = EngineKey(**record["key"])
        expected_sha = record["engine_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"sidecar {sidecar.name} is corrupt ({type(err).__name__}: {err})"
    if built != key:
        return f"{engine.name} was built for something else ({'; '.join(key.differences(built))})"
    if sha256_bytes(engine.read_bytes()) != expected_sha:
        return f"{engine.name} is corrupt (its sha256 differs from the one recorded at build time)"
    return None


def profile_shapes(spec: GraphSpec, config: ModelConfig, max_queries: int) -> dict[str, tuple[tuple[int, ...], ...]]:
    """(min, opt, max) shape of every input: one row at least, :data:`OPT_QUERIES` queries typical, Qmax at most."""
    low = RowBounds(1, 1, 1 if config.is_part_model else 0)
    typical = row_bounds(config, min(OPT_QUERIES, max_queries))
    high = row_bounds(config, max_queries)
    return {t.name: (t.shape(low), t.shape(typical), t.shape(high)) for t in spec.inputs}


def binding_problems(spec: GraphSpec, engine_io: list[tuple[str, bool, torch.dtype, tuple[int, ...]]]) -> list[str]:
    """Compare an engine's I/O tensors (name, is_input, dtype, shape with -1 for dynamic dims) with the spec."""
    expected = {t.name: (t in spec.inputs, t.dtype, t) for t in spec.inputs + spec.outputs}
    found = {name: (is_input, dtype, shape) for name, is_input, dtype, shape in engine_io}
    problems = []
    if set(found) != set(expected):
        problems.append(f"engine tensors {sorted(found)} differ from the graph's {sorted(expected)}")
    for name in set(found) & set(expected):
        is_input, dtype, shape = found[name]
        want_input, want_dtype, tensor = expected[name]
        want_shape = tuple(-1 if isinstance(d, str) else d for d in tensor.dims)
        if is_input != want_input:
            problems.append(f"{name} is an {'input' if is_input else 'output'} of the engine")
        if dtype != want_dtype:
            problems.append(f"{name} has dtype {dtype}, expected {want_dtype}")
        if tuple(shape) != want_shape:
            problems.append(f"{name} has shape {tuple(shape)}, expected {want_shape}")
    return problems
