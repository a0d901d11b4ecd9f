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

from .affordances import AffordanceVocabulary, load_affordances
from .backends import Backend, TorchBackend
from .defaults import MAX_QUERIES, MIN_PIXELS, MODES, SCORE_THRESHOLD, TEXT_CACHE
from .model.network import DecoderOutput, PartCLIPSeg, QueryTensors, tokenize, trim_tokens
from .model_vocabulary import unknown_queries
from .prompt_plan import PromptPlan
from .postprocess import Result, postprocess
from .preprocess import as_rgb, preprocess
from .errors import NoQueries
from .queries import PartQuery, parse_queries


@dataclass(frozen=True)
class _QueryState:
    plan: PromptPlan
    tensors: QueryTensors
    unknown: frozenset[PartQuery]  # queries a closed-vocabulary model was never trained on


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

    ``affordances``: the affordance vocabulary of the query parser ("grasp:knife", "grasp"; default the bundled
    one, :func:`~partclipseg.affordances.load_affordances`).
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
        affordances: AffordanceVocabulary | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.affordances = affordances if affordances is not None else load_affordances()
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
    def unknown_queries(self) -> list[PartQuery]:
        """The active queries a closed-vocabulary model was never trained on (their parts are flagged
        ``unknown_query``; partclipseg.model_vocabulary)."""
        state = self._state
        return [q for q in state.plan.queries if q in state.unknown] if state else []

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
        parsed = parse_queries(queries, self.max_queries, affordances=self.affordances)
        model = self.model
        with self._lock:
            plan = PromptPlan.build(parsed, model.config.is_part_model, anchor=model.trained_classes)
            features = self._text_features(plan.prompts)
            tensors = self.backend.prepare(model.condition(features, plan))
            unknown = frozenset(unknown_queries(parsed, model.vocabulary, model.trained_classes))
            self._state = _QueryState(plan, tensors, unknown)
        return parsed

    def clear_queries(self) -> None:
        """Deactivate every query (segment() then raises NoQueries until the next set_queries)."""
        with self._lock:
            self._state = None

    def _text_features(self, prompts: Sequence[str]) -> torch.Tensor:
        new = [p for p in prompts if p not in self._text_cache]
        if new:
            tokens = trim_tokens(tokenize(new, self.model.config.context_length))
            self._text_cache.update(zip(new, self.backend.encode_text(self.model, tokens)))
        features = torch.stack([self._text_cache[p] for p in prompts])
        # bounded: a stream of ever new queries must not grow memory; the oldest prompts go first (dict order)
        for stale in [p for p in self._text_cache if p not in prompts][:max(0, len(self._text_cache) - TEXT_CACHE)]:
            del self._text_cache[stale]
        return features

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

    def _active(self) -> _QueryState:
        state = self._state
        if state is None:
            raise NoQueries("no active queries: call set_queries() first, e.g. set_queries('pot/handle')")
        return state

    def decode(self, encoding: ImageEncoding, mode: str | None = None, objects: Sequence[str] | None = None,
               state: _QueryState | None = None) -> Result:
        """Decode the active queries (or the query ``state`` taken earlier) against an encoded image."""
        state = state or self._active()
        start = time.perf_counter()
        out = self.backend.decode(encoding.features, state.tensors)
        self.backend.synchronize()
        decoded = time.perf_counter()
        result = postprocess(
            state.plan, out, encoding.size, mode or self.mode, objects, self.score_threshold, self.min_pixels
        )
        for part in result.parts:
            part.unknown_query = part.query in state.unknown
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
        """Segment the active queries in one image (see :meth:`encode_image` for what it accepts): wholly with the
        query set active when it starts, whatever set_queries() or clear_queries() do meanwhile. Raises
        :class:`NoQueries` when none is active."""
        state = self._active()
        return self.decode(self.encode_image(image, color_order), mode, objects, state)

    def segment_batch(self, images: Sequence[tuple[np.ndarray, str]], mode: str | None = None,
                      objects: Sequence[str] | None = None) -> list[Result]:
        """Several (image, colour order) pairs, e.g. one frame per camera, with the same query set: encoded and
        decoded as one batch where the backend takes one (:attr:`Backend.batches_images`), one after the other
        otherwise; one :class:`Result` per image, whose shared stages report the batch's time."""
        state = self._active()
        if len(images) < 2 or not self.backend.batches_images:
            return [self.decode(self.encode_image(image, order), mode, objects, state) for image, order in images]
        start = time.perf_counter()
        rgbs = [as_rgb(image, order) for image, order in images]
        pixels = torch.cat([preprocess(rgb) for rgb in rgbs])
        encode_start = time.perf_counter()
        features = self.backend.encode_image(pixels)
        self.backend.synchronize()
        decode_start = time.perf_counter()
        out = self.backend.decode(features, state.tensors)
        self.backend.synchronize()
        decoded = time.perf_counter()
        shared = {"preprocess": (encode_start - start) * 1e3, "encode": (decode_start - encode_start) * 1e3,
                  "decode": (decoded - decode_start) * 1e3}
        results = []
        for i, rgb in enumerate(rgbs):
            begin = time.perf_counter()
            one = DecoderOutput(main=out.main[i:i + 1], pair=None if out.pair is None else out.pair[i:i + 1])
            result = postprocess(state.plan, one, rgb.shape[:2], mode or self.mode, objects, self.score_threshold,
                                 self.min_pixels)
            for part in result.parts:
                part.unknown_query = part.query in state.unknown
            result.timings = {**shared, "postprocess": (time.perf_counter() - begin) * 1e3}
            results.append(result)
        return results
