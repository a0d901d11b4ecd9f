"""The inference API: set queries rarely, segment every frame.

>>> seg = Segmenter(load_checkpoint("partclipseg_voc_oracle.pth"))
>>> seg.set_queries("pot/handle; knife handle")
>>> result = seg.segment(rgb_image)          # HxWx3 uint8 RGB (color_order="bgr" for BGR)
>>> result.labels, result.parts[0].score

Per frame the image is encoded once whatever the number of queries, and all prompts are decoded in one batched
call. Text features and everything that depends only on the queries are computed in :meth:`set_queries`; only
prompts never seen before go through the text tower.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from .backends import Backend, TorchBackend
from .defaults import MAX_QUERIES, MIN_PIXELS, MODES, SCORE_THRESHOLD
from .model.network import PartCLIPSeg, QueryTensors, tokenize, trim_tokens
from .prompt_plan import PromptPlan
from .postprocess import Result, postprocess
from .preprocess import as_rgb, preprocess
from .queries import PartQuery, QueryError, parse_queries


@dataclass(frozen=True)
class _QueryState:
    plan: PromptPlan
    tensors: QueryTensors


@dataclass
class ImageEncoding:
    """One frame's image features (backend device) and its source size (height, width)."""

    features: torch.Tensor
    size: tuple[int, int]
    preprocess_ms: float
    encode_ms: float


class Segmenter:
    """Open-vocabulary part segmentation with a cached query set.

    Thread safety: :meth:`set_queries` may run while another thread segments; a frame uses the query set that
    was active when its decoding started (the swap is a single reference assignment).
    """

    def __init__(
        self,
        model: PartCLIPSeg,
        backend: Backend | None = None,
        *,
        mode: str = "pred-all",
        score_threshold: float = SCORE_THRESHOLD,
        min_pixels: int = MIN_PIXELS,
        max_queries: int = MAX_QUERIES,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.model = model.eval()
        self.backend = backend or TorchBackend(model)
        self.mode = mode
        self.score_threshold = score_threshold
        self.min_pixels = min_pixels
        self.max_queries = max_queries
        self._text_cache: dict[str, torch.Tensor] = {}
        self._state: _QueryState | None = None
        self._lock = threading.Lock()

    @property
    def queries(self) -> list[PartQuery]:
        state = self._state
        return list(state.plan.queries) if state else []

    @property
    def plan(self) -> PromptPlan | None:
        """The active prompt plan (None before the first :meth:`set_queries`)."""
        state = self._state
        return state.plan if state else None

    def clear_text_cache(self) -> None:
        """Forget cached text features (after changing the model's weights, or to time the text tower)."""
        with self._lock:
            self._text_cache.clear()

    @torch.inference_mode()
    def set_queries(self, queries: str | Iterable[str | PartQuery]) -> list[PartQuery]:
        """Parse and activate a query set (raises :class:`QueryError` and keeps the old set on bad input)."""
        parsed = parse_queries(queries, self.max_queries)
        with self._lock:
            plan = PromptPlan.build(parsed, self.model.config.is_part_model, anchor=self.model.trained_classes)
            features = self._text_features(plan.prompts)
            tensors = self.backend.prepare(self.model.condition(features, plan))
            self._state = _QueryState(plan, tensors)
        return parsed

    def clear_queries(self) -> None:
        """Deactivate every query (segment() then raises QueryError until the next set_queries)."""
        with self._lock:
            self._state = None

    def _text_features(self, prompts: Sequence[str]) -> torch.Tensor:
        new = [p for p in prompts if p not in self._text_cache]
        if new:
            tokens = trim_tokens(tokenize(new, self.model.config.context_length))
            self._text_cache.update(zip(new, self.backend.encode_text(self.model, tokens)))
        return torch.stack([self._text_cache[p] for p in prompts])

    def encode_image(self, image: np.ndarray, color_order: str = "rgb") -> ImageEncoding:
        """Check and encode one HxWx3 (or grey / 4-channel) uint8 image; raises ImageError on bad input."""
        start = time.perf_counter()
        rgb = as_rgb(image, color_order)
        pixels = preprocess(rgb)
        encoded = time.perf_counter()
        features = self.backend.encode_image(pixels)
        self.backend.synchronize()
        done = time.perf_counter()
        return ImageEncoding(features, rgb.shape[:2], (encoded - start) * 1e3, (done - encoded) * 1e3)

    def decode(self, encoding: ImageEncoding, mode: str | None = None, objects: Sequence[str] | None = None) -> Result:
        """Decode the active queries against an encoded image."""
        state = self._state
        if state is None:
            raise QueryError("no active queries: call set_queries() first, e.g. set_queries('pot/handle')")
        start = time.perf_counter()
        out = self.backend.decode(encoding.features, state.tensors)
        self.backend.synchronize()
        decoded = time.perf_counter()
        result = postprocess(
            state.plan, out, encoding.size, mode or self.mode, objects, self.score_threshold, self.min_pixels
        )
        done = time.perf_counter()
        result.timings = {
            "preprocess": encoding.preprocess_ms,
            "encode": encoding.encode_ms,
            "decode": (decoded - start) * 1e3,
            "postprocess": (done - decoded) * 1e3,
        }
        return result

    def segment(
        self,
        image: np.ndarray,
        color_order: str = "rgb",
        mode: str | None = None,
        objects: Sequence[str] | None = None,
    ) -> Result:
        """Segment the active queries in one image (see :meth:`encode_image` for what it accepts)."""
        if self._state is None:
            raise QueryError("no active queries: call set_queries() first, e.g. set_queries('pot/handle')")
        return self.decode(self.encode_image(image, color_order), mode, objects)
