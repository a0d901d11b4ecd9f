"""ONNX Runtime backend: the exported graphs (cached per model, :func:`partclipseg.onnx.export.cached_graphs`) on
the CPU, or on CUDA with ``onnxruntime-gpu``: image encoder and decoder every frame, the text encoder when the
query set changes. Per-frame tensors are bound in place (IO binding), so on CUDA the image features never leave
the GPU between the encoder and the decoder.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..model.stages import (
    INDEX_DTYPE, GraphSpec, RowBounds, decoder_feeds, decoder_output, decoder_spec, encoder_spec, graph_query, row_bounds, row_counts,
)
from ..model.network import DecoderOutput, PartCLIPSeg, QueryTensors
from .base import Backend, BackendUnavailable, require, require_cuda, require_exporter
from .options import BackendOptions

if TYPE_CHECKING:
    from ..onnx.export import ExportedGraphs

INSTALL_HINT = ("pip install onnxruntime==1.32.0 (CPU; in the default requirements), or onnxruntime-gpu instead of "
                "onnxruntime for CUDA")
_NUMPY = {torch.float32: np.float32, torch.int32: np.int32}


class OnnxRuntimeBackend(Backend):
    """The exported graphs in ONNX Runtime at fp32, fp16 (the fp16 graphs; on the CPU, ONNX Runtime computes
    the nodes it has no fp16 kernel for in fp32, so fp16 there checks the graphs rather than saving time) or int8
    (CPU only: :mod:`partclipseg.onnx.int8`)."""

    name = "onnxruntime"
    precisions = ("fp32", "fp16", "int8")

    def __init__(
        self,
        model: PartCLIPSeg,
        options: BackendOptions = BackendOptions(),
        *,
        graphs: ExportedGraphs | None = None,
        threads: int | None = None,
    ) -> None:
        """``graphs``: use these exported graphs instead of the cache (export's own parity check)."""
        ort = require("onnxruntime", INSTALL_HINT)
        options.check(self.name)
        device, precision = options.device, options.precision
        self.device = torch.device(device)
        if precision not in self.precisions:
            raise BackendUnavailable(f"onnxruntime runs fp32, fp16 or int8 graphs, not {precision!r}")
        if precision == "int8" and self.device.type != "cpu":
            raise BackendUnavailable("the int8 graphs run on the CPU (ONNX Runtime's CPU kernels); on CUDA use fp16")
        if self.device.type == "cuda":
            require_cuda(self.device, "onnxruntime")
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable(
                    f"this onnxruntime has no CUDA provider (it has {ort.get_available_providers()}); "
                    "pip uninstall onnxruntime && pip install onnxruntime-gpu, matching your CUDA version")
            providers = [("CUDAExecutionProvider", {"device_id": self.device.index or 0})]
        elif self.device.type == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise BackendUnavailable(f"onnxruntime runs on 'cpu' or 'cuda', not {device!r}")
        if graphs is None:
            require_exporter()
            from ..onnx.export import cached_graphs

            graphs = cached_graphs(model, options.cache_dir or None, precision, options.max_queries)
        self.config = model.config
        self.precision = precision
        self.max_queries = graphs.max_queries
        self.limit = row_bounds(self.config, graphs.max_queries)
        self.graphs = graphs
        settings = ort.SessionOptions()
        settings.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        settings.intra_op_num_threads = threads or torch.get_num_threads()
        # ORT's pool threads spin-wait after each run by default, taking the CPU from the torch postprocessing
        # that follows (measured: 44 ms instead of 6 ms at Q = 1, 640x480, 2 cores)
        settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
        settings.log_severity_level = 3
        self.encoder = ort.InferenceSession(str(graphs.encoder), settings, providers=providers)
        self.decoder = ort.InferenceSession(str(graphs.decoder), settings, providers=providers)
        self.text = ort.InferenceSession(str(graphs.text), settings, providers=providers)
        self.specs = {"encoder": encoder_spec(self.config), "decoder": decoder_spec(self.config)}

    def _run(self, session, spec: GraphSpec, inputs: dict[str, torch.Tensor], rows: RowBounds) -> dict[str, torch.Tensor]:
        binding = session.io_binding()
        kind, index = self.device.type, self.device.index or 0
        for name, tensor in inputs.items():
            binding.bind_input(name, kind, index, _NUMPY[tensor.dtype], tuple(tensor.shape), tensor.data_ptr())
        outputs = {t.name: torch.empty(t.shape(rows), dtype=t.dtype, device=self.device) for t in spec.outputs}
        for name, tensor in outputs.items():
            binding.bind_output(name, kind, index, _NUMPY[tensor.dtype], tuple(tensor.shape), tensor.data_ptr())
        if kind == "cuda":
            torch.cuda.current_stream(self.device).synchronize()  # inputs written by torch kernels
        session.run_with_iobinding(binding)  # returns when the outputs are written
        return outputs

    @torch.inference_mode()
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pixels = pixel_values.to(self.device, torch.float32).contiguous()
        return self._run(self.encoder, self.specs["encoder"], {"pixel_values": pixels}, RowBounds(0, 0, 0))["features"]

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, query: QueryTensors) -> DecoderOutput:
        feeds = decoder_feeds(features.to(self.device), query, self.config)
        return decoder_output(self._run(self.decoder, self.specs["decoder"], feeds, row_counts(query)))

    @torch.inference_mode()
    def encode_text(self, model: PartCLIPSeg, tokens: torch.Tensor) -> torch.Tensor:
        features = self.text.run(None, {"tokens": tokens.to(INDEX_DTYPE).numpy()})[0]
        return torch.from_numpy(features).to(next(model.parameters()).device)

    def prepare(self, query: QueryTensors) -> QueryTensors:
        return graph_query(query, self.device, self.limit, self.max_queries)

    def describe(self) -> str:
        return f"onnxruntime {self.device.type} {self.precision} ({self.graphs.folder})"
