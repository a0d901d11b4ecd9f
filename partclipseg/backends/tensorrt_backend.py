"""TensorRT backend: an image-encoder engine and a decoder engine (dynamic rows 1..Qmax), built from the exported
ONNX graphs on first use or by ``partclipseg build-engine``, cached with a sidecar key (:mod:`.engine_cache`) and
run on torch CUDA tensors with ``execute_async_v3`` on a stream of their own.

No pycuda: it has no wheel and needs the CUDA driver headers to build; torch already owns the GPU memory and the
streams. TensorRT is an optional extra (``partclipseg[trt]``); nothing imports it until this backend is asked for.

fp16: on TensorRT 11 (no ``BuilderFlag.FP16``) the fp16 ONNX graph (:mod:`partclipseg.onnx.fp16`, LayerNorm and
Softmax in fp32) is built as a strongly typed network; on TensorRT 10 the fp32 graph is built with
``BuilderFlag.FP16`` and the normalisation/softmax/reduce layers pinned to fp32.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from ..errors import EngineError
from ..defaults import TRT_WORKSPACE_MIB
from ..model.stages import (
    GraphSpec, decoder_feeds, decoder_output, decoder_spec, encoder_spec, graph_query, row_bounds,
)
from ..model.config import ModelConfig
from ..model.network import DecoderOutput, PartCLIPSeg, QueryTensors
from .base import Backend, BackendUnavailable, require, require_cuda, require_exporter
from .options import BackendOptions
from .engine_cache import (
    EngineKey, binding_problems, engine_path, fp16_mode, gpu_identity, platform_tag, profile_shapes,
    rebuild_reason, sha256_bytes, timing_cache_path, write_sidecar,
)

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install TensorRT 10 or 11 with its Python bindings: on a Jetson it comes with JetPack (python3-libnvinfer); "
    "on a desktop pip install 'partclipseg[trt]' with NVIDIA's Python package index configured (see NVIDIA's "
    "TensorRT installation guide). Without it use --backend torch --device cuda"
)



def import_tensorrt():
    return require("tensorrt", INSTALL_HINT)


def _progress_monitor(trt, label: str):
    """A TensorRT progress monitor that logs the builder's top-level phases (nested ones at debug level)."""

    class Progress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.started: dict[str, float] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.started[phase_name] = time.perf_counter()
            level = logging.INFO if parent_phase is None else logging.DEBUG
            log.log(level, "%s: %s (%d steps)", label, phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            seconds = time.perf_counter() - self.started.pop(phase_name, time.perf_counter())
            log.debug("%s: %s done in %.1f s", label, phase_name, seconds)

    return Progress()


def _pin_to_fp32(trt, network) -> int:
    """TensorRT 10 with BuilderFlag.FP16: keep normalisation, softmax and reductions in fp32 (LayerNorm overflows
    in fp16); returns how many layers were pinned."""
    kinds = {trt.LayerType.NORMALIZATION, trt.LayerType.SOFTMAX, trt.LayerType.REDUCE}
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type in kinds:
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            pinned += 1
    return pinned


def build_engine(trt, onnx_path: Path, engine: Path, key: EngineKey, profile: dict, workspace_mib: int) -> None:
    """Parse ``onnx_path``, build a serialized engine for ``key`` and write it with its sidecar (atomically)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if key.fp16_mode != "builder-flag" and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)  # required on 10.x, default on 11.x
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if key.fp16_mode == "builder-flag":
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        log.info("%s engine: BuilderFlag.FP16, %d normalisation/softmax/reduce layers kept in fp32",
                 key.stage, _pin_to_fp32(trt, network))
    optimisation = builder.create_optimization_profile()
    for name, (low, typical, high) in profile.items():
        optimisation.set_shape(name, low, typical, high)
    config.add_optimization_profile(optimisation)
    timing_path = timing_cache_path(engine.parent, key.tensorrt_version, key.compute_capability)
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists() else b"")
    config.set_timing_cache(timing, ignore_mismatch=True)  # a cache from another GPU is ignored, not fatal
    monitor = _progress_monitor(trt, f"{key.stage} engine")
    if hasattr(config, "progress_monitor"):
        config.progress_monitor = monitor
    log.info("building the %s engine (%s%s, TensorRT %s, %s): this takes minutes the first time",
             key.stage, key.precision, f", {key.fp16_mode}" if key.fp16_mode else "", key.tensorrt_version, key.gpu_name)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build the {key.stage} engine from {onnx_path} (see its messages above)")
    data = memoryview(serialized)
    seconds = time.perf_counter() - start
    engine.parent.mkdir(parents=True, exist_ok=True)
    scratch = engine.with_name(f".{engine.name}.{os.getpid()}.tmp")
    scratch.write_bytes(data)
    os.replace(scratch, engine)
    write_sidecar(engine, key, sha256_bytes(data), seconds)
    timing_path.write_bytes(memoryview(config.get_timing_cache().serialize()))
    log.info("built %s in %.0f s (%.0f MiB)", engine, seconds, len(data) / 2**20)


class TensorRTEngine:
    """One deserialized engine and its execution context, run on torch CUDA tensors on a stream of its own."""

    def __init__(self, trt, data: bytes, spec: GraphSpec, device: torch.device) -> None:
        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
                  trt.int64: torch.int64, trt.bool: torch.bool}
        self.device = device
        self.spec = spec
        with torch.cuda.device(device):
            self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = self.runtime.deserialize_cuda_engine(data)
            if self.engine is None:
                raise EngineError("TensorRT could not deserialize the engine (corrupt, or built by another version)")
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            io = [(name, self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                   dtypes.get(self.engine.get_tensor_dtype(name)), tuple(self.engine.get_tensor_shape(name)))
                  for name in names]
            problems = binding_problems(spec, io)
            if problems:
                raise EngineError("engine does not match the graph: " + "; ".join(problems))
            self.context = self.engine.create_execution_context()
            self.stream = torch.cuda.Stream(device)

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        caller = torch.cuda.current_stream(self.device)
        context = self.context
        for tensor in self.spec.inputs:
            value = inputs[tensor.name]
            context.set_input_shape(tensor.name, tuple(value.shape))
            context.set_tensor_address(tensor.name, value.data_ptr())
        outputs = {}
        for tensor in self.spec.outputs:
            shape = tuple(context.get_tensor_shape(tensor.name))
            outputs[tensor.name] = torch.empty(shape, dtype=tensor.dtype, device=self.device)
            context.set_tensor_address(tensor.name, outputs[tensor.name].data_ptr())
        self.stream.wait_stream(caller)  # inputs were written on the caller's stream
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise EngineError(f"TensorRT failed to enqueue the {self.spec.name} engine")
        for value in list(inputs.values()) + list(outputs.values()):
            value.record_stream(self.stream)  # the caching allocator must not reuse them before the engine is done
        caller.wait_stream(self.stream)
        return outputs


def load_or_build(
    trt,
    onnx_path: Path,
    onnx_sha256: str,
    spec: GraphSpec,
    config: ModelConfig,
    precision: str,
    max_queries: int,
    device: torch.device,
    folder: Path,
    rebuild: bool = False,
    workspace_mib: int = TRT_WORKSPACE_MIB,
) -> TensorRTEngine:
    """The cached engine for this graph, GPU and TensorRT, or a new one (logging why it was (re)built)."""
    gpu, capability = gpu_identity(device)
    mode = fp16_mode(hasattr(trt.BuilderFlag, "FP16")) if precision == "fp16" else None
    key = EngineKey(spec.name, onnx_sha256, trt.__version__, gpu, capability, platform_tag(), precision, mode,
                    config.image_size, max_queries)
    path = engine_path(folder, spec.name, precision)
    reason = "rebuild requested" if rebuild else rebuild_reason(path, key)
    if reason is None:
        try:
            engine = TensorRTEngine(trt, path.read_bytes(), spec, device)
            log.info("loaded %s", path)
            return engine
        except EngineError as err:
            reason = f"{path.name} cannot be used: {err}"
    log.warning("(re)building the TensorRT %s engine: %s", spec.name, reason)
    build_engine(trt, onnx_path, path, key, profile_shapes(spec, config, max_queries), workspace_mib)
    return TensorRTEngine(trt, path.read_bytes(), spec, device)


class TensorRTBackend(Backend):
    """Image-encoder and decoder TensorRT engines on a CUDA device, fp32 or fp16."""

    name = "tensorrt"
    precisions = ("fp32", "fp16")

    def __init__(self, model: PartCLIPSeg, options: BackendOptions = BackendOptions()) -> None:
        trt = import_tensorrt()
        options.check(self.name)
        device, precision, max_queries = options.device, options.precision, options.max_queries
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise BackendUnavailable(f"TensorRT runs on CUDA devices only, not {device!r}")
        require_cuda(self.device, "tensorrt")
        if precision not in self.precisions:
            raise BackendUnavailable(f"the tensorrt backend builds fp32 or fp16 engines, not {precision!r}")
        require_exporter()
        from ..onnx.export import cached_graphs

        builder_flag = precision == "fp16" and fp16_mode(hasattr(trt.BuilderFlag, "FP16")) == "builder-flag"
        graphs = cached_graphs(model, options.cache_dir or None, "fp32" if precision == "fp32" or builder_flag else "fp16",
                               max_queries)
        self.config = model.config
        self.precision = precision
        self.max_queries = max_queries
        self.limit = row_bounds(self.config, max_queries)
        self.folder = Path(options.engine_dir) if options.engine_dir else graphs.folder
        self.engines = {
            spec.name: load_or_build(trt, graphs.path(spec.name), graphs.sha256[spec.name], spec, self.config, precision,
                                     max_queries, self.device, self.folder, options.rebuild_engines,
                                     options.workspace_mib)
            for spec in (encoder_spec(self.config), decoder_spec(self.config))
        }

    @torch.inference_mode()
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pixels = pixel_values.to(self.device, torch.float32, non_blocking=True).contiguous()
        return self.engines["encoder"]({"pixel_values": pixels})["features"]

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, query: QueryTensors) -> DecoderOutput:
        return decoder_output(self.engines["decoder"](decoder_feeds(features, query, self.config)))

    def prepare(self, query: QueryTensors) -> QueryTensors:
        return graph_query(query, self.device, self.limit, self.max_queries)

    def describe(self) -> str:
        return f"tensorrt {self.device} {self.precision} (engines in {self.folder})"

