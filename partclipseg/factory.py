"""Start-up in one place: which weights to load and how to run them, for the CLI, the node, the benchmarks and the
engine builder alike.

>>> segmenter, description = open_segmenter(Weights(checkpoint="partclipseg_voc_oracle.pth"), "onnxruntime")
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .auto import open_auto
from .backends import Backend, BackendOptions, make_backend
from .checkpoint import load_checkpoint
from .defaults import AUTO, weights_hint
from .errors import CheckpointError
from .model.config import ModelConfig, tiny_config
from .model.network import PartCLIPSeg
from .segmenter import Segmenter

RANDOM_SIZES = ("tiny", "full")
BackendFactory = Callable[[str, PartCLIPSeg, BackendOptions], Backend]  # make_backend's signature


@dataclass(frozen=True)
class Weights:
    """A checkpoint file, or random weights of a size ("tiny", or "full" ViT-B/16) for tests and benchmarks."""

    checkpoint: str = ""
    random: str = ""
    trust: bool = False  # allow full unpickling of a checkpoint holding more than tensors


def open_model(
    checkpoint: str | Path | None,
    random_weights: str | None = None,
    expect: str | None = None,
    trust: bool = False,
    seed: int = 0,
) -> tuple[PartCLIPSeg, str]:
    """The model and a one-line description of its weights.

    Exactly one of ``checkpoint`` and ``random_weights`` ("tiny" or "full") must be given; without either this
    refuses and says where the weights are (they are never downloaded).
    """
    if checkpoint and random_weights:
        raise CheckpointError("give either a checkpoint or random weights, not both")
    if checkpoint:
        model = load_checkpoint(checkpoint, expect=expect, trust=trust)
        return model, f"{model.config.arch} weights from {Path(checkpoint).name}"
    if random_weights:
        if random_weights not in RANDOM_SIZES:
            raise CheckpointError(f"random weights size must be one of {RANDOM_SIZES}, got {random_weights!r}")
        arch = expect or "partclipseg"
        config = tiny_config(arch) if random_weights == "tiny" else ModelConfig(arch=arch)
        torch.manual_seed(seed)
        return PartCLIPSeg(config).eval(), f"RANDOM {random_weights} {arch} weights (masks are meaningless)"
    raise CheckpointError(
        "no checkpoint given. Weights are never downloaded implicitly.\n"
        f"{weights_hint()}\nOr ask for random weights explicitly (CLI: --random-weights tiny|full)."
    )


def open_backend(weights: Weights, backend: str = "torch", options: BackendOptions = BackendOptions(),
                 make: BackendFactory = make_backend) -> tuple[PartCLIPSeg, Backend, str]:
    """The model of ``weights``, its ``backend`` built with ``options`` (by ``make``), and the weights'
    description. ``auto`` (backend, device or precision) is resolved here (:mod:`partclipseg.auto`)."""
    model, description = open_model(weights.checkpoint or None, weights.random or None, trust=weights.trust)
    options.check(backend)
    if backend == AUTO or options.automatic:
        return model, open_auto(model, backend, options, make), description
    return model, make(backend, model, options), description


def open_segmenter(weights: Weights, backend: str = "torch", options: BackendOptions = BackendOptions(),
                   make: BackendFactory = make_backend, **segmenter_options: Any) -> tuple[Segmenter, str]:
    """A :class:`Segmenter` of ``weights`` on ``backend`` (``segmenter_options``: mode, score_threshold, ...,
    max_queries by default ``options.max_queries``), and the weights' description."""
    model, built, description = open_backend(weights, backend, options, make)
    segmenter_options.setdefault("max_queries", options.max_queries)
    return Segmenter(model, built, **segmenter_options), description
