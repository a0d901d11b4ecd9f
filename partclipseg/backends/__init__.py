"""Inference backends behind one interface, chosen by name and built from one :class:`BackendOptions`.

The :class:`~partclipseg.segmenter.Segmenter` does preprocessing, the query cache and postprocessing for all of
them; a backend only runs the two per-frame stages. ``onnxruntime`` and ``tensorrt`` are imported only when asked
for, so a missing optional package never breaks the torch backend.
"""
from __future__ import annotations

from ..model.network import PartCLIPSeg
from .base import Backend, BackendUnavailable
from ..defaults import AUTO
from .options import BACKEND_CHOICES, BACKENDS, BackendOptions
from .torch_backend import TorchBackend


def make_backend(name: str, model: PartCLIPSeg, options: BackendOptions = BackendOptions()) -> Backend:
    """The backend called ``name`` ("torch", "onnxruntime", "tensorrt") for ``model``, built with ``options``.

    Raises :class:`BackendUnavailable` with the reason and what to install.
    """
    options.check(name)
    if name == AUTO or options.automatic:
        raise BackendUnavailable(f"backend {name!r}, device {options.device!r}, precision {options.precision!r}: "
                                 "'auto' is resolved on start-up by partclipseg.factory.open_backend (with the "
                                 "per-checkpoint quality gate); make_backend builds one concrete backend")
    if name == "torch":
        return TorchBackend(model, options)
    if name == "onnxruntime":
        from .ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model, options)
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend(model, options)


__all__ = ["BACKEND_CHOICES", "BACKENDS", "Backend", "BackendOptions", "BackendUnavailable", "TorchBackend", "make_backend"]
