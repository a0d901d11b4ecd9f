"""The reference backend: the torch model itself (CPU or CUDA)."""
from __future__ import annotations

import torch

from ..model.network import DecoderOutput, PartCLIPSeg, QueryTensors
from .base import Backend, BackendUnavailable

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend(Backend):
    """Eager torch; ``precision`` fp16/bf16 runs the per-frame stages under autocast."""

    name = "torch"

    def __init__(self, model: PartCLIPSeg, device: str = "cpu", precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise BackendUnavailable(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("device 'cuda' asked for, but torch sees no CUDA GPU; use device 'cpu'")
        if precision == "fp16" and not device.startswith("cuda"):
            raise BackendUnavailable("fp16 needs a CUDA device; on the CPU use fp32 or bf16")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.precision = precision
        self.dtype = PRECISIONS[precision]

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.precision != "fp32")

    @torch.inference_mode()
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model.encode_image(pixel_values.to(self.device, non_blocking=True))

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, query: QueryTensors) -> DecoderOutput:
        with self._autocast():
            out = self.model.decode(features, query)
        return DecoderOutput(main=out.main.float(), pair=None if out.pair is None else out.pair.float())

    def prepare(self, query: QueryTensors) -> QueryTensors:
        return query.to(self.device)

    def describe(self) -> str:
        return f"torch {self.device.type} {self.precision}"
