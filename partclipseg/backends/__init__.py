"""Inference backends behind one interface, chosen by name."""
from __future__ import annotations

from ..model.network import PartCLIPSeg
from .base import Backend, BackendUnavailable
from .torch_backend import TorchBackend

BACKENDS = ("torch",)


def make_backend(name: str, model: PartCLIPSeg, device: str = "cpu", precision: str = "fp32") -> Backend:
    """The backend called ``name`` on ``device`` at ``precision``; raises BackendUnavailable with the reason."""
    if name == "torch":
        return TorchBackend(model, device, precision)
    raise BackendUnavailable(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "TorchBackend", "make_backend"]
