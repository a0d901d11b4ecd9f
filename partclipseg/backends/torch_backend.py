"""The reference backend: the torch model itself (CPU or CUDA).

On CUDA, fp16/bf16 run under autocast (LayerNorm and softmax stay fp32), and two options remove the launch
overhead that dominates at batch 1:

* ``torch_compile``: :func:`torch.compile` of the encoder and the decoder (one compilation per query bucket);
* ``cuda_graphs``: each stage is captured once as a CUDA graph (the decoder once per query bucket, on first use)
  and replayed with its inputs copied into static buffers.

Both pad query sets to buckets (:mod:`.buckets`) so that shapes are static.
"""
from __future__ import annotations

import logging
from typing import Callable

import torch

from ..defaults import QUERY_BUCKETS
from ..model.network import DecoderOutput, PartCLIPSeg, QueryTensors
from .base import Backend, BackendUnavailable, require_cuda
from .buckets import PaddedQuery, as_plain, empty_like_rows, pad_query, unpad
from .options import BackendOptions

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # precision -> autocast dtype


class CapturedCall:
    """A function of fixed-shape tensors captured as a CUDA graph; calls copy inputs in, replay, return the
    (static) outputs, which the next call overwrites."""

    def __init__(self, fn: Callable, *example: object) -> None:
        self.inputs = [_static_copy(x) for x in example]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):  # warm-up outside the capture (cuBLAS workspaces, autotuning, compilation)
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = fn(*self.inputs)

    def __call__(self, *args: object) -> object:
        for static, value in zip(self.inputs, args):
            _copy_into(static, value)
        self.graph.replay()
        return self.outputs


def _static_copy(value: object) -> object:
    if isinstance(value, QueryTensors):
        static = empty_like_rows(value)
        _copy_into(static, value)
        return static
    return value.clone()


def _copy_into(static: object, value: object) -> None:
    if isinstance(static, QueryTensors):
        for name in static.__dataclass_fields__:
            getattr(static, name).copy_(getattr(value, name))
    else:
        static.copy_(value)


class TorchBackend(Backend):
    """Eager torch; ``precision`` fp16/bf16 runs the per-frame stages under autocast."""

    name = "torch"
    precisions = tuple(DTYPES)

    def __init__(self, model: PartCLIPSeg, options: BackendOptions = BackendOptions()) -> None:
        options.check(self.name)
        device, precision, cuda_graphs = options.device, options.precision, options.cuda_graphs
        self.device = torch.device(device)
        if self.device.type == "cuda":
            require_cuda(self.device, "torch")
        elif self.device.type != "cpu":
            raise BackendUnavailable(f"the torch backend runs on 'cpu' or 'cuda', not {device!r}")
        if precision not in self.precisions:
            raise BackendUnavailable(f"the torch backend runs fp32, fp16 or bf16, not {precision!r} (int8: the "
                                     "onnxruntime backend on the CPU)")
        if precision == "fp16" and self.device.type != "cuda":
            raise BackendUnavailable("fp16 needs a CUDA device; on the CPU use fp32 or bf16")
        if cuda_graphs and self.device.type != "cuda":
            raise BackendUnavailable("CUDA graphs need device 'cuda'")
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.torch_compile = options.torch_compile
        self.cuda_graphs = cuda_graphs
        self.buckets = tuple(b for b in QUERY_BUCKETS if b < options.max_queries) + (options.max_queries,)
        self._encode: Callable = self._encode_eager
        self._decode: Callable = self._decode_eager
        if self.torch_compile:
            self._encode = torch.compile(self._encode_eager, dynamic=False)
            self._decode = torch.compile(self._decode_eager, dynamic=False)
        self._captured: dict[object, CapturedCall] = {}

    @property
    def batches_images(self) -> bool:  # type: ignore[override]
        """Eager torch takes a batch of images; compiled or captured stages have static shapes."""
        return not self.padded

    @property
    def padded(self) -> bool:
        """Whether query sets are padded to buckets (static shapes for compile / CUDA graphs)."""
        return self.torch_compile or self.cuda_graphs

    def _autocast(self) -> torch.autocast:
        # no weight-cast cache: every call is its own autocast region, and CUDA graph capture needs it off
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.precision != "fp32", cache_enabled=False)

    def _encode_eager(self, pixels: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model.encode_image(pixels).float()

    def _decode_eager(self, features: torch.Tensor, query: QueryTensors) -> tuple[torch.Tensor, torch.Tensor | None]:
        with self._autocast():
            out = self.model.decode(features, query)
        return out.main.float(), None if out.pair is None else out.pair.float()

    def _run(self, key: object, fn: Callable, *args: object) -> object:
        if not self.cuda_graphs:
            return fn(*args)
        if key not in self._captured:
            log.info("capturing a CUDA graph for %s (once)", key)
            self._captured[key] = CapturedCall(fn, *args)
        return self._captured[key](*args)

    @torch.inference_mode()
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pixels = pixel_values.to(self.device, non_blocking=True)
        features = self._run("the image encoder", self._encode, pixels)
        return features.clone() if self.cuda_graphs else features

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, query: QueryTensors) -> DecoderOutput:
        if not isinstance(query, PaddedQuery):
            main, pair = self._decode(features, query)
            return DecoderOutput(main=main, pair=pair)
        main, pair = self._run(f"the decoder at {query.bucket} queries", self._decode, features, as_plain(query))
        out = unpad(DecoderOutput(main=main, pair=pair), query.rows)
        if self.cuda_graphs:  # the captured outputs are overwritten by the next replay
            out = DecoderOutput(main=out.main.clone(), pair=None if out.pair is None else out.pair.clone())
        return out

    def prepare(self, query: QueryTensors) -> QueryTensors:
        moved = query.to(self.device)
        return pad_query(moved, self.model.config, self.buckets) if self.padded else moved

    def describe(self) -> str:
        extras = [name for name, on in (("torch.compile", self.torch_compile), ("CUDA graphs", self.cuda_graphs)) if on]
        return f"torch {self.device.type} {self.precision}" + (f" ({', '.join(extras)})" if extras else "")
