"""``partclipseg bench-backends``: every backend variant against torch fp32 on the CPU, in one run.

* Parity: the same 640x480 photo and query sets through the :class:`Segmenter` with the variant and with torch
  fp32 on the CPU (the reference). Reported: the largest absolute difference of the image features and of the
  per-query logits, each relative to the largest reference magnitude, and the share of equal label pixels. A
  variant passes when the logits' relative difference is within :data:`PARITY_TOLERANCE` of its precision.
* Time: median milliseconds per stage (preprocess, image encoder, decoder, postprocess) and end to end
  (``Segmenter.segment``) at each query count, the device synchronised after every stage; text encoding is timed
  once per query set (it runs only when the queries change). ``vs_first`` = the first variant's end-to-end time
  divided by this one's (> 1: faster).

``scripts/gpu_check.sh`` runs this on a GPU; on the CPU it gives the ONNX Runtime vs torch ratio.
"""
from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..auto import open_auto
from ..backends import Backend, BackendOptions, BackendUnavailable, make_backend
from ..defaults import AUTO
from ..model.network import PartCLIPSeg
from ..postprocess import Result
from ..segmenter import Segmenter
from .common import BENCH_QUERIES, frame

# max |logit difference| / max |reference logit|. fp32 leaves room for TF32 tensor cores, which GPUs use by
# default in cuDNN convolutions and TensorRT; on the CPU fp32 differences are ~1e-7.
PARITY_TOLERANCE = {"fp32": 5e-3, "fp16": 3e-2, "bf16": 8e-2, "int8": 1e-1}
GOAL_MS = 8.0  # torch fp16, Q = 8, encoder + decoder, H100-class GPU (issue 5)


@dataclass(frozen=True)
class Variant:
    """A backend configuration: ``name/precision[+graphs][+compile]``, e.g. ``torch/fp16+graphs``; ``auto`` is
    what backend, device and precision ``auto`` (the CLI's and the node's default) choose for the model."""

    backend: str
    precision: str
    cuda_graphs: bool = False
    torch_compile: bool = False

    @classmethod
    def parse(cls, text: str) -> "Variant":
        if text == AUTO:
            return cls(AUTO, AUTO)
        head, *options = text.split("+")
        backend, _, precision = head.partition("/")
        unknown = set(options) - {"graphs", "compile"}
        if not precision or unknown:
            raise ValueError(f"variant {text!r}: expected auto or backend/precision[+graphs][+compile], e.g. "
                             "torch/fp16+graphs")
        return cls(backend, precision, "graphs" in options, "compile" in options)

    def __str__(self) -> str:
        if self.backend == AUTO:
            return AUTO
        return f"{self.backend}/{self.precision}" + "+graphs" * self.cuda_graphs + "+compile" * self.torch_compile

    def make(self, model: PartCLIPSeg, options: BackendOptions) -> Backend:
        """This variant's backend: ``options`` with this variant's precision and torch options."""
        if self.backend == AUTO:
            return open_auto(model, AUTO, options.replace(precision=AUTO))
        if self.backend == "torch":
            options = options.replace(cache_dir="", torch_compile=self.torch_compile, cuda_graphs=self.cuda_graphs)
        return make_backend(self.backend, model, options.replace(precision=self.precision))

    def segmenter(self, model: PartCLIPSeg, options: BackendOptions, **kwargs) -> Segmenter:
        """A Segmenter on this variant's backend for ``model`` (torch, and auto that may choose it, get a copy: the
        torch backend moves and compiles the module it runs); raises :class:`BackendUnavailable` where it cannot
        run."""
        own = copy.deepcopy(model) if self.backend in ("torch", AUTO) else model
        return Segmenter(own, self.make(own, options), **kwargs)


DEFAULT_VARIANTS = {
    "cpu": ["torch/fp32", "onnxruntime/fp32", "onnxruntime/int8"],
    "cuda": ["torch/fp32", "torch/fp16", "torch/bf16", "torch/fp16+graphs", "onnxruntime/fp32", "onnxruntime/fp16",
             "tensorrt/fp32", "tensorrt/fp16"],
}



@dataclass
class Reference:
    features: torch.Tensor
    results: dict[int, Result]


def reference(model: PartCLIPSeg, image: np.ndarray, counts: list[int]) -> Reference:
    """torch fp32 on the CPU, on a copy of ``model`` (other variants may move theirs to a GPU)."""
    segmenter = Segmenter(copy.deepcopy(model))
    features = segmenter.encode_image(image).features
    results = {}
    for count in counts:
        segmenter.set_queries(BENCH_QUERIES[:count])
        results[count] = segmenter.segment(image)
    return Reference(features, results)


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float().cpu() - want).abs().max() / want.abs().max().clamp_min(1e-12))


def parity(segmenter: Segmenter, precision: str, ref: Reference, image: np.ndarray) -> list[dict]:
    """One row per query count: relative feature/logit differences and label agreement against ``ref``."""
    features = _relative(segmenter.encode_image(image).features, ref.features)
    rows = []
    for count, want in ref.results.items():
        segmenter.set_queries(BENCH_QUERIES[:count])
        got = segmenter.segment(image)
        logits = _relative(got.logits, want.logits)
        rows.append({
            "queries": count,
            "features_rel": f"{features:.1e}",
            "logits_rel": f"{logits:.1e}",
            "labels_equal_%": round(100.0 * float(np.mean(got.labels == want.labels)), 2),
            "ok": logits <= PARITY_TOLERANCE[precision],
        })
    return rows


def timing(segmenter: Segmenter, image: np.ndarray, counts: list[int], repeats: int) -> list[dict]:
    """One row per query count: median ms per stage and end to end; the query change (text tower and query
    tensors, from an empty text cache) and the first answer after it (the change and one frame)."""
    rows = []
    for count in counts:
        segmenter.clear_text_cache()
        start = time.perf_counter()
        segmenter.set_queries(BENCH_QUERIES[:count])
        text_ms = (time.perf_counter() - start) * 1e3
        segmenter.segment(image)
        first_ms = (time.perf_counter() - start) * 1e3
        segmenter.segment(image)  # warm-up (CUDA graph capture, autotuning, allocator)
        stages: dict[str, list[float]] = {}
        for _ in range(repeats):
            start = time.perf_counter()
            result = segmenter.segment(image)
            stages.setdefault("end_to_end", []).append((time.perf_counter() - start) * 1e3)
            for stage, ms in result.timings.items():
                stages.setdefault(stage, []).append(ms)
        row = {"queries": count, "text_ms": round(text_ms, 1), "first_answer_ms": round(first_ms, 1)}
        row.update({f"{stage}_ms": round(statistics.median(ms), 2) for stage, ms in stages.items()})
        row["enc+dec_ms"] = round(row["encode_ms"] + row["decode_ms"], 2)
        rows.append(row)
    return rows


def run_variants(
    model: PartCLIPSeg,
    variants: list[Variant],
    options: BackendOptions,
    counts: list[int],
    repeats: int,
    check_parity: bool = True,
) -> tuple[list[dict], list[dict], list[str]]:
    """(parity rows, timing rows, skipped-variant lines) for every variant that can run here, on ``options``'
    device (and cache)."""
    image = frame()
    ref = reference(model, image, counts) if check_parity else None
    parity_rows, timing_rows, skipped = [], [], []
    for variant in variants:
        try:
            segmenter = variant.segmenter(model, options)
        except BackendUnavailable as err:
            skipped.append(f"skipped {variant} on {options.device}: {err}")
            continue
        label = {"variant": str(variant)}
        if ref is not None:
            parity_rows += [label | row for row in parity(segmenter, segmenter.backend.precision, ref, image)]
        timing_rows += [label | row for row in timing(segmenter, image, counts, repeats)]
        del segmenter
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    first = {r["queries"]: r["end_to_end_ms"] for r in timing_rows if r["variant"] == timing_rows[0]["variant"]} \
        if timing_rows else {}
    for row in timing_rows:
        row["vs_first"] = round(first[row["queries"]] / row["end_to_end_ms"], 2)
    return parity_rows, timing_rows, skipped
