"""Logits -> label image, per-part scores, pixel counts and ROIs at source resolution, by the Pred-All or Oracle-Obj
rule, decided in logit space (docs/model.md, "Post-processing: Pred-All and Oracle-Obj")."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .defaults import CLIPSEG_BACKGROUND_LOGIT, MODES
from .model.network import DecoderOutput
from .prompt_plan import Channel, PromptPlan
from .queries import PartQuery, normalise


@dataclass
class PartResult:
    """One query's share of the label image."""

    query: PartQuery
    label: int  # its value in the label image (query index + 1)
    score: float  # mean probability over its pixels (0 when it has none)
    pixel_count: int
    roi: tuple[int, int, int, int]  # x, y, width, height (all 0 when empty)
    unknown_query: bool = False  # a closed-vocabulary model was never trained on the query (set by the Segmenter)


@dataclass
class Result:
    labels: np.ndarray  # (H, W) uint8: 0 = nothing, i + 1 = query i
    parts: list[PartResult]
    logits: torch.Tensor  # (Q, H, W) each query's own logits at source resolution (before gating)
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage

    @property
    def queries(self) -> list[PartQuery]:
        return [p.query for p in self.parts]

    def mask(self, index: int) -> np.ndarray:
        """Boolean mask of query ``index``."""
        return self.labels == index + 1

    def probability(self, index: int) -> np.ndarray:
        """(H, W) float32 probability map of query ``index`` (sigmoid of its logits)."""
        return torch.sigmoid(self.logits[index]).cpu().numpy()


def _pick(out: DecoderOutput, channel: Channel) -> torch.Tensor:
    source = out.main if channel.source == "main" else out.pair
    return source[0, channel.index]


def _rois(labels: np.ndarray, present: Sequence[int]) -> dict[int, tuple[int, int, int, int]]:
    rois = {}
    for value in present:
        mask = labels == value
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        rois[value] = (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))
    return rois


def postprocess(
    plan: PromptPlan,
    out: DecoderOutput,
    size: tuple[int, int],
    mode: str = "pred-all",
    objects: Sequence[str] | None = None,
    score_threshold: float = 0.0,
    min_pixels: int = 0,
) -> Result:
    """Decoder output for one image -> :class:`Result` at ``size`` = (height, width)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "oracle" and objects is None:
        raise ValueError("oracle mode needs the objects present in the image (objects=[...])")
    n_queries = len(plan.queries)
    maps = [_pick(out, c) for c in plan.query_channels]
    gating = mode == "pred-all" and plan.background_channel is not None
    if gating:
        maps += [_pick(out, c) for c in plan.object_channels] + [_pick(out, plan.background_channel)]
    upsampled = F.interpolate(torch.stack(maps)[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    logits = upsampled[:n_queries]

    scores = torch.empty((n_queries + 1, *size), dtype=logits.dtype, device=logits.device)
    if gating:
        winner = upsampled[n_queries:-1].max(0).indices  # max(0) is several times faster than argmax(0) on CPU
        background_index = len(plan.object_channels) - 1
        for i, obj in enumerate(plan.query_objects):
            scores[i] = logits[i] if obj is None else logits[i].masked_fill(winner != obj, -torch.inf)
        scores[n_queries] = upsampled[-1].masked_fill(winner != background_index, -torch.inf)
    elif mode == "pred-all":
        scores[:n_queries] = logits
        scores[n_queries] = CLIPSEG_BACKGROUND_LOGIT
    else:
        present = {normalise(o) for o in objects}
        for i, query in enumerate(plan.queries):
            scores[i] = logits[i] if query.object is None or query.object in present else -torch.inf
        scores[n_queries] = -torch.inf

    best, index = scores.max(0)
    labels = torch.where(index == n_queries, 0, index + 1)
    probability = torch.sigmoid(best)
    labels[torch.isneginf(best)] = 0
    if score_threshold > 0:
        labels[probability < score_threshold] = 0
    flat = labels.flatten()
    counts = torch.bincount(flat, minlength=n_queries + 1)
    if min_pixels > 0:
        small = (counts > 0) & (counts < min_pixels)
        small[0] = False
        if small.any():
            labels[small[labels]] = 0
            flat = labels.flatten()
            counts = torch.bincount(flat, minlength=n_queries + 1)
    sums = torch.bincount(flat, weights=probability.flatten().double(), minlength=n_queries + 1)
    counts_list = counts.tolist()
    sums_list = sums.tolist()
    labels_np = labels.to(torch.uint8).cpu().numpy()
    rois = _rois(labels_np, [i for i in range(1, n_queries + 1) if counts_list[i]])
    parts = [
        PartResult(
            query=query,
            label=i + 1,
            score=sums_list[i + 1] / counts_list[i + 1] if counts_list[i + 1] else 0.0,
            pixel_count=counts_list[i + 1],
            roi=rois.get(i + 1, (0, 0, 0, 0)),
        )
        for i, query in enumerate(plan.queries)
    ]
    return Result(labels=labels_np, parts=parts, logits=logits)
