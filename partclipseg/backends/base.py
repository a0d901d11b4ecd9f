"""The one backend interface: image -> reduced features once per frame; features + query tensors -> logits.

Text encoding and the query tensors stay in torch (they run only when the query set changes); a backend runs
the two per-frame stages (and may run the text tower). Callers never know which backend ran.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from types import ModuleType

import torch

from ..errors import BackendUnavailable
from ..model.network import DecoderOutput, PartCLIPSeg, QueryTensors



def require(module: str, hint: str) -> ModuleType:
    """Import an optional dependency or raise :class:`BackendUnavailable` saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise BackendUnavailable(f"the {module} package is not installed ({err}); {hint}") from err


EXPORT_HINT = "pip install onnx==1.23.2 onnxscript==0.7.2 (both in the default requirements)"


def require_exporter() -> None:
    """The packages the ONNX export needs (onnxruntime and tensorrt backends export on first use)."""
    for module in ("onnx", "onnxscript"):
        require(module, EXPORT_HINT)


def require_cuda(device: torch.device, backend: str) -> None:
    """Refuse a CUDA device torch cannot see (every GPU backend binds torch CUDA tensors)."""
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"{backend} on {device} needs a CUDA GPU visible to torch (a CUDA build of torch); "
                                 "torch sees none: use device 'cpu'")


class Backend(ABC):
    """Runs the per-frame stages of a :class:`~partclipseg.model.PartCLIPSeg` model."""

    name: str = "backend"
    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    batches_images: bool = False  # encode_image and decode take several images at once (batch dimension B > 1)
    selection: str = ""  # why this backend and precision were chosen (backend/precision auto); "" when configured

    @abstractmethod
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float32 (CPU) -> reduced activations (L, B, tokens, D) on the backend's device (B = 1
        unless :attr:`batches_images`)."""

    @abstractmethod
    def decode(self, features: torch.Tensor, query: QueryTensors) -> DecoderOutput:
        """Reduced activations + query tensors (from :meth:`prepare`) -> logits, all rows in one call."""

    def encode_text(self, model: PartCLIPSeg, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (N, L) -> text features (N, projection_dim) float32 on the model's device; runs when the query
        set changes. By default ``model`` itself in fp32; backends with a text graph run that instead."""
        device = next(model.parameters()).device
        return model.encode_text(tokens.to(device)).float()

    def prepare(self, query: QueryTensors) -> QueryTensors:
        """Move cached query tensors where :meth:`decode` wants them (called once per query set)."""
        return query

    def synchronize(self) -> None:
        """Wait for the device's queued work, so that stage timings measure the work and not its launch."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> str:
        """One line for logs and diagnostics."""
        return self.name
