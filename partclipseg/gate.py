"""The per-checkpoint quality gate of reduced precision (docs/deployment.md, "backend auto").

A faster default must not silently change what a checkpoint outputs: before ``precision auto`` runs a model at a
reduced precision (int8 on the CPU, fp16 on CUDA), its labels on the bundled sample photos (real photos and the
kitchen scene, each with its own queries) are compared with torch fp32 on the CPU. The precision is used only when
every photo agrees on at least :data:`~partclipseg.defaults.GATE_MIN_AGREEMENT` of its pixels; the verdict is kept in
``<cache_dir>/gate/`` keyed by the model's fingerprint and the backend, so it is computed once per checkpoint.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .backends import Backend
from .data.samples import SAMPLES, load_sample
from .defaults import GATE_MIN_AGREEMENT, default_cache_dir
from .model.network import PartCLIPSeg
from .onnx.export import model_fingerprint
from .postprocess import Result
from .segmenter import Segmenter

log = logging.getLogger(__name__)

GATE_VERSION = 1  # bump when the frames, queries or rule change: every cached verdict is recomputed


@dataclass(frozen=True)
class Verdict:
    """Whether ``precision`` on ``backend`` keeps this checkpoint's labels (share of equal pixels per photo)."""

    backend: str
    precision: str
    agreement: dict[str, float]  # sample name -> share of pixels with the fp32 label
    threshold: float

    @property
    def passed(self) -> bool:
        return min(self.agreement.values()) >= self.threshold

    @property
    def worst(self) -> tuple[str, float]:
        return min(self.agreement.items(), key=lambda item: item[1])

    def summary(self) -> str:
        name, share = self.worst
        return (f"{self.precision} labels agree with fp32 on {100 * share:.2f} % of the pixels of the worst of "
                f"{len(self.agreement)} sample photos ({name}; {'>=' if self.passed else '<'} "
                f"{100 * self.threshold:g} % needed)")


def _machine() -> str:
    """The CPU model (int8 kernels differ between CPUs) and the GPU, if any."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu + (f"; {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")


def _key(model: PartCLIPSeg, backend: Backend, precision: str) -> tuple[str, dict]:
    versions = {"torch": torch.__version__}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    settings = {"gate": GATE_VERSION, "model": model_fingerprint(model), "backend": backend.describe(),
                "precision": precision, "machine": _machine(), "threshold": GATE_MIN_AGREEMENT,
                "samples": list(SAMPLES), "versions": versions}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16], settings


def sample_results(segmenter: Segmenter) -> Iterator[tuple[str, Result]]:
    """(name, result) for every bundled sample photo, each segmented with its own queries."""
    for name, sample in SAMPLES.items():
        segmenter.set_queries(sample.queries)
        yield name, segmenter.segment(load_sample(name))


def measure(model: PartCLIPSeg, backend: Backend, precision: str) -> Verdict:
    """Label agreement of ``backend`` with torch fp32 on the CPU on every sample photo (with its queries)."""
    reference_model = model
    if any(p.device.type != "cpu" for p in model.parameters()):
        reference_model = copy.deepcopy(model).cpu()
    want = dict(sample_results(Segmenter(reference_model)))
    agreement = {name: float(np.mean(got.labels == want[name].labels))
                 for name, got in sample_results(Segmenter(model, backend))}
    return Verdict(backend.describe(), precision, agreement, GATE_MIN_AGREEMENT)


def check(model: PartCLIPSeg, backend: Backend, precision: str, cache_dir: str | Path | None = None) -> Verdict:
    """The verdict on ``backend`` running ``model`` at ``precision``: from the cache, else measured and cached."""
    key, settings = _key(model, backend, precision)
    path = Path(cache_dir or default_cache_dir()) / "gate" / f"{key}.json"
    try:
        record = json.loads(path.read_text())
        if record["settings"] == settings:
            return Verdict(**record["verdict"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    log.warning("checking %s against fp32 on the %d sample photos (once per checkpoint and backend)", precision,
                len(SAMPLES))
    start = time.perf_counter()
    verdict = measure(model, backend, precision)
    log.info("checked %s in %.0f s: %s", precision, time.perf_counter() - start, verdict.summary())
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        json.dump({"settings": settings, "verdict": asdict(verdict)}, f, indent=2)
    os.replace(f.name, path)
    return verdict
