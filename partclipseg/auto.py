"""``backend``, ``device`` and ``precision`` ``auto``, the CLI's and the node's defaults: the fastest configuration
this machine has that keeps the checkpoint's output (docs/deployment.md, "backend auto").

* backend: TensorRT on CUDA when it is installed, else torch on CUDA, else ONNX Runtime on the CPU, else torch on
  the CPU; one that cannot start (a missing package, a failed export) gives way to the next, saying why;
* device: CUDA when torch sees a GPU (and, for ONNX Runtime, it has its CUDA provider), else the CPU;
* precision: the backend's reduced precision on that device (int8 on the CPU, fp16 on CUDA) if this checkpoint's
  labels pass the quality gate (:mod:`partclipseg.gate`) on the sample photos, else fp32 (said in a warning).
  ``precision fp32`` is the exact mode: no reduced precision, whatever the backend.

The choice and its reason are logged and kept in :attr:`Backend.selection` (the node's /diagnostics show it).
"""
from __future__ import annotations

import importlib.util
import logging
from typing import Callable

import torch

from . import gate
from .backends import Backend, BackendOptions, make_backend
from .defaults import AUTO
from .errors import BackendUnavailable, GraphError
from .model.network import PartCLIPSeg

log = logging.getLogger(__name__)

# the reduced precision worth gating per (backend, device type), fastest first; fp32 always follows
REDUCED = {("onnxruntime", "cpu"): "int8", ("onnxruntime", "cuda"): "fp16", ("tensorrt", "cuda"): "fp16",
           ("torch", "cuda"): "fp16"}
# torch on the CPU: bf16 autocast is 1.7x faster than fp32 only on CPUs with AVX-512 BF16 or AMX, slower elsewhere,
# and ONNX Runtime int8 is both faster and closer to fp32 (docs/deployment.md): auto never picks it.
EXPORT_PACKAGES = ("onnxruntime", "onnx", "onnxscript")


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def resolve_device(device: str, backend: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU (and onnxruntime has its CUDA provider), else ``cpu``."""
    if device != AUTO:
        return device
    if backend == "tensorrt":
        return "cuda"
    if not torch.cuda.is_available():
        return "cpu"
    if backend == "onnxruntime":
        import onnxruntime

        return "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"
    return "cuda"


def candidates(device: str) -> list[tuple[str, str, str]]:
    """(backend, device, why) in the order backend ``auto`` tries them on ``device`` (``auto`` or a device)."""
    gpu = torch.cuda.is_available() if device == AUTO else device.startswith("cuda")
    cuda = "cuda" if device == AUTO else device
    found = []
    if gpu:
        if _installed("tensorrt"):
            found.append(("tensorrt", cuda, "TensorRT is installed and torch sees a GPU"))
        found.append(("torch", cuda, "a GPU without TensorRT" if not found else "TensorRT could not start"))
    if not gpu or device == AUTO:
        cpu = "no GPU backend could start" if gpu else "device cpu" if torch.cuda.is_available() else "no GPU"
        if _installed(*EXPORT_PACKAGES):
            found.append(("onnxruntime", "cpu", f"{cpu}; ONNX Runtime is the fastest CPU backend"))
        found.append(("torch", "cpu", f"{cpu}; onnxruntime, onnx or onnxscript is not installed"
                      if not _installed(*EXPORT_PACKAGES) else "ONNX Runtime could not start"))
    return found


def open_auto(model: PartCLIPSeg, backend: str, options: BackendOptions,
              make: Callable[[str, PartCLIPSeg, BackendOptions], Backend] = make_backend) -> Backend:
    """A concrete backend for ``backend``/``options`` where any of them is ``auto`` (see the module docstring)."""
    options.check(backend)
    if backend == AUTO:
        tries = candidates(options.device)
    else:
        tries = [(backend, resolve_device(options.device, backend), f"{backend} as configured")]
    problems = []
    for name, device, why in tries:
        try:
            built = _with_precision(model, name, options.replace(device=device), why, make)
        except (BackendUnavailable, GraphError) as err:
            if len(tries) == 1:
                raise
            log.warning("backend auto: %s on %s cannot start (%s); trying the next", name, device, err)
            problems.append(f"{name} on {device}: {err}")
            continue
        log.info("backend: %s (%s)", built.describe(), built.selection)
        return built
    raise BackendUnavailable("backend auto found no backend that starts: " + "; ".join(problems))


def _with_precision(model: PartCLIPSeg, name: str, options: BackendOptions, why: str,
                    make: Callable[[str, PartCLIPSeg, BackendOptions], Backend]) -> Backend:
    """``name`` at ``options.precision``, or for ``auto`` at its reduced precision if the gate passes, else fp32."""
    if options.precision != AUTO:
        built = make(name, model, options)
        built.selection = f"{why}; precision {options.precision} as configured"
        return built
    reduced = REDUCED.get((name, torch.device(options.device).type))
    if reduced is not None:
        built = make(name, model, options.replace(precision=reduced))
        verdict = gate.check(model, built, reduced, options.cache_dir or None)
        if verdict.passed:
            built.selection = f"{why}; precision auto: {verdict.summary()}"
            return built
        log.warning("precision auto: %s would change this checkpoint's output (%s); running fp32 instead, exact",
                    reduced, verdict.summary())
        del built
        built = make(name, model, options.replace(precision="fp32"))
        built.selection = f"{why}; precision auto: fp32, because {verdict.summary()}"
        return built
    built = make(name, model, options.replace(precision="fp32"))
    built.selection = f"{why}; precision auto: fp32 (no reduced precision is gated for {name} on {options.device})"
    return built
