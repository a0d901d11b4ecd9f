"""Inference backends behind one interface, chosen by name, device and precision.

The :class:`~partclipseg.segmenter.Segmenter` does preprocessing, the query cache and postprocessing for all of
them; a backend only runs the two per-frame stages. ``onnxruntime`` and ``tensorrt`` are imported only when asked
for, so a missing optional package never breaks the torch backend.
"""
from __future__ import annotations

from pathlib import Path

from ..defaults import MAX_QUERIES
from ..model.network import PartCLIPSeg
from .base import Backend, BackendUnavailable
from .torch_backend import TorchBackend

BACKENDS = ("torch", "onnxruntime", "tensorrt")
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "fp16", "bf16")


def make_backend(
    name: str,
    model: PartCLIPSeg,
    device: str = "cpu",
    precision: str = "fp32",
    *,
    cache_dir: Path | str | None = None,
    max_queries: int = MAX_QUERIES,
    torch_compile: bool = False,
    cuda_graphs: bool = False,
    engine_dir: Path | str | None = None,
    rebuild_engines: bool = False,
) -> Backend:
    """The backend called ``name`` on ``device`` ("cpu", "cuda", "cuda:N") at ``precision``.

    ``cache_dir``: where onnxruntime/tensorrt keep exported graphs and engines (default $PARTCLIPSEG_CACHE or
    ~/.cache/partclipseg). ``torch_compile``/``cuda_graphs``: torch only. ``engine_dir``/``rebuild_engines``:
    tensorrt only. Raises :class:`BackendUnavailable` with the reason and what to install.
    """
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise BackendUnavailable(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if name != "torch" and (torch_compile or cuda_graphs):
        raise BackendUnavailable("torch.compile and CUDA graphs are options of the torch backend only")
    if name != "tensorrt" and (engine_dir or rebuild_engines):
        raise BackendUnavailable("engine_dir and rebuild_engines are options of the tensorrt backend only")
    if name == "torch":
        return TorchBackend(model, device, precision, torch_compile=torch_compile, cuda_graphs=cuda_graphs,
                            max_queries=max_queries)
    if name == "onnxruntime":
        from .ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model, device, precision, cache_dir=cache_dir, max_queries=max_queries)
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend(model, device, precision, cache_dir=cache_dir, engine_dir=engine_dir,
                           max_queries=max_queries, rebuild=rebuild_engines)


__all__ = ["BACKENDS", "DEVICES", "PRECISIONS", "Backend", "BackendUnavailable", "TorchBackend", "make_backend"]
