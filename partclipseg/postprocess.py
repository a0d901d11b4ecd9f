"""Logits -> label image, per-part scores, pixel counts and ROIs at source resolution, by the Pred-All or Oracle-Obj
rule, decided in logit space (docs/model.md, "Post-processing: Pred-All and Oracle-Obj").

The rule is applied to the bilinearly upsampled logits, as the official code does, without upsampling every map:
it is decided once at the decoder's resolution, and a source pixel whose four bilinear neighbours there agree
(same winning object, same winning map) takes their decision, which is exact: a convex combination of values that
one map tops at all four corners is topped by that map. Only the pixels between neighbours that disagree (the
boundary band, a few percent of the image) are interpolated in every map and decided again. Each query's full
logit map (:attr:`Result.logits`) is upsampled only when asked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .defaults import CLIPSEG_BACKGROUND_LOGIT, MODES
from .model.network import DecoderOutput
from .prompt_plan import Channel, PromptPlan
from .queries import PartQuery, normalise

MAX_BAND = 0.4  # above this share of source pixels in the band, every map is upsampled instead


@dataclass
class PartResult:
    """One query's share of the label image."""

    query: PartQuery
    label: int  # its value in the label image (query index + 1)
    score: float  # mean probability over its pixels (0 when it has none)
    pixel_count: int
    roi: tuple[int, int, int, int]  # x, y, width, height (all 0 when empty)
    unknown_query: bool = False  # a closed-vocabulary model was never trained on the query (set by the Segmenter)


class Result:
    """One frame's segmentation: ``labels`` (H, W) uint8 (0 = nothing, i + 1 = query i), ``parts`` (one per
    query), ``timings`` (milliseconds per stage) and, on request, ``logits``."""

    def __init__(self, labels: np.ndarray, parts: list[PartResult], logits: torch.Tensor | None = None,
                 timings: dict[str, float] | None = None, *, query_maps: torch.Tensor | None = None) -> None:
        """``query_maps``: each query's logits at the decoder's resolution, upsampled to ``labels``' size when
        :attr:`logits` is first read (instead of ``logits`` given at source resolution)."""
        self.labels = labels
        self.parts = parts
        self.timings = timings if timings is not None else {}
        self._logits = logits
        self._query_maps = query_maps

    @property
    def logits(self) -> torch.Tensor | None:
        """(Q, H, W) each query's own logits at source resolution (before gating); computed on first use."""
        if self._logits is None and self._query_maps is not None:
            self._logits = _upsample(self._query_maps, self.labels.shape)
        return self._logits

    @property
    def queries(self) -> list[PartQuery]:
        return [p.query for p in self.parts]

    def mask(self, index: int) -> np.ndarray:
        """Boolean mask of query ``index``."""
        return self.labels == index + 1

    def probability(self, index: int) -> np.ndarray:
        """(H, W) float32 probability map of query ``index`` (sigmoid of its logits)."""
        return torch.sigmoid(self.logits[index]).cpu().numpy()


def _upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(maps[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


def _first_max(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``maps.max(0)``: the largest value over dim 0 and the first index holding it, several times faster on the
    CPU (a value-only max, then the first channel equal to it)."""
    count = maps.shape[0]
    best = maps.amax(0)
    if count > 255:
        return best, maps.max(0).indices
    weights = torch.arange(count, 0, -1, dtype=torch.uint8, device=maps.device).view(count, *[1] * (maps.dim() - 1))
    first = ((maps == best) * weights).amax(0)
    return best, (count - first.long()).clamp_(max=count - 1)  # clamp: a NaN equals nothing


@dataclass(frozen=True)
class _Rule:
    """How the decoder's maps become a decision: the plan's channels in the ``main`` and ``pair`` outputs, and
    the mode's rule (docs/model.md). Works on maps of any shape (C, ...): the decoder's grid or a list of pixels.
    Decides exactly as a max over the stacked [gated queries..., background] would: ties go to the first query."""

    query_channels: tuple[Channel, ...]
    query_objects: tuple[int, ...]  # object index of each query, -1: a bare part (never gated)
    objects: tuple[int, int] | None = None  # Pred-All gating: main rows [start, stop) = objects, then background
    background: int | None = None  # Pred-All gating: the pair row of the background part channel
    allowed: tuple[bool, ...] | None = None  # Oracle-Obj: queries whose object is present

    def queries(self, main: torch.Tensor, pair: torch.Tensor | None) -> torch.Tensor:
        """Each query's map (n, ...), in query order (a view where the channels are consecutive rows)."""
        return self._stack(main, pair, range(len(self.query_channels)))

    def _stack(self, main: torch.Tensor, pair: torch.Tensor | None, queries: Sequence[int]) -> torch.Tensor:
        channels = [self.query_channels[i] for i in queries]
        sources, first = {c.source for c in channels}, channels[0].index
        if len(sources) == 1 and [c.index for c in channels] == list(range(first, first + len(channels))):
            return (main if sources == {"main"} else pair)[first:first + len(channels)]
        return torch.stack([(main if c.source == "main" else pair)[c.index] for c in channels])

    def _best_of(self, main: torch.Tensor, pair: torch.Tensor | None,
                 queries: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The largest of these queries' logits and which query (first on ties); -inf and n when there are none."""
        like = main[0]
        if not queries:
            return torch.full_like(like, -torch.inf), torch.full(like.shape, len(self.query_channels),
                                                                 dtype=torch.long, device=like.device)
        best, which = _first_max(self._stack(main, pair, queries))
        return best, torch.tensor(queries, device=like.device)[which]

    def decide(self, main: torch.Tensor, pair: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (index (...): the winning query, n for none; its logit (-inf: none); key (...): equal keys at the four
        neighbours of a pixel mean its decision is theirs)."""
        n = len(self.query_channels)
        if self.allowed is not None:  # Oracle-Obj: the best query of the objects present, no background
            best, index = self._best_of(main, pair, [i for i, ok in enumerate(self.allowed) if ok])
            return index, best, index
        if self.objects is None:  # plain CLIPSeg Pred-All: the best query against a constant background logit
            best, index = self._best_of(main, pair, range(n))
            behind = best < CLIPSEG_BACKGROUND_LOGIT
            return index.masked_fill(behind, n), best.masked_fill(behind, CLIPSEG_BACKGROUND_LOGIT), index
        # Pred-All: per pixel, the winning object's best query (or the background part channel)
        start, stop = self.objects
        winner = _first_max(main[start:stop])[1]
        owned = [[i for i, o in enumerate(self.query_objects) if o == obj] for obj in range(stop - start - 1)]
        single = [q[0] if len(q) == 1 else None for q in owned]
        pair_row = [self.query_channels[q].index if q is not None else 0 for q in single] + [self.background]
        query_of = [q if q is not None else n for q in single] + [n]
        device = main.device
        best = pair.reshape(pair.shape[0], -1).gather(0, torch.tensor(pair_row, device=device)[winner].view(1, -1))
        best = best.view(winner.shape)
        index = torch.tensor(query_of, device=device)[winner]
        nothing = [not q for q in owned] + [False]
        if any(nothing):
            best.masked_fill_(torch.tensor(nothing, device=device)[winner], -torch.inf)
        for obj, queries in enumerate(owned):
            if len(queries) > 1:
                here = winner == obj
                obj_best, obj_index = self._best_of(main, pair, queries)
                best, index = torch.where(here, obj_best, best), torch.where(here, obj_index, index)
        for i in (i for i, o in enumerate(self.query_objects) if o < 0):  # bare parts compete everywhere
            value = self._stack(main, pair, [i])[0]
            take = (value > best) | ((value == best) & (index > i))  # ties: the lower query index
            best, index = torch.where(take, value, best), index.masked_fill(take, i)
        return index, best, index * (stop - start) + winner


def _rule(plan: PromptPlan, mode: str, objects: Sequence[str] | None) -> _Rule:
    owners = tuple(-1 if o is None else o for o in plan.query_objects)
    if mode == "pred-all" and plan.background_channel is not None:
        rows = [c.index for c in plan.object_channels]
        if rows != list(range(rows[0], rows[0] + len(rows))) or {c.source for c in plan.object_channels} != {"main"}:
            raise ValueError("the plan's object channels are not consecutive main-head rows")
        return _Rule(plan.query_channels, owners, objects=(rows[0], rows[-1] + 1),
                     background=plan.background_channel.index)
    if mode == "pred-all":
        return _Rule(plan.query_channels, owners)
    present = {normalise(o) for o in objects}
    return _Rule(plan.query_channels, owners, allowed=tuple(q.object is None or q.object in present for q in plan.queries))


@dataclass(frozen=True)
class _Resampling:
    """Where each source pixel reads the decoder's grid (bilinear, align_corners=False), computed as torch's CPU
    kernel computes it: a float32 scale, the source coordinate rounded once to float32 (a fused multiply-add)."""

    y0: torch.Tensor
    y1: torch.Tensor
    wy0: torch.Tensor
    wy1: torch.Tensor
    x0: torch.Tensor
    x1: torch.Tensor
    wx0: torch.Tensor
    wx1: torch.Tensor
    top_left: torch.Tensor  # (H * W,) flat index of each source pixel's top-left neighbour

    @staticmethod
    def axis(in_size: int, out_size: int) -> tuple[torch.Tensor, ...]:
        scale = (torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)).double()
        real = (scale * (torch.arange(out_size, dtype=torch.float64) + 0.5) - 0.5).float().clamp_min(0)
        i0 = real.long().clamp_max(in_size - 1)
        w1 = (real - i0).clamp(0, 1)
        return i0, torch.where(i0 < in_size - 1, i0 + 1, i0), 1 - w1, w1


@lru_cache(maxsize=8)
def _resampling(grid: tuple[int, int], size: tuple[int, int]) -> _Resampling:
    y0, y1, wy0, wy1 = _Resampling.axis(grid[0], size[0])
    x0, x1, wx0, wx1 = _Resampling.axis(grid[1], size[1])
    return _Resampling(y0, y1, wy0, wy1, x0, x1, wx0, wx1, (y0[:, None] * grid[1] + x0[None, :]).flatten())


def _lerp(p: torch.Tensor, q: torch.Tensor, wp: torch.Tensor, wq: torch.Tensor) -> torch.Tensor:
    """p * wp + q * wq in float32 as torch's CPU kernel computes it, fma(p, wp, q * wq): bit for bit the values
    of F.interpolate on AVX2/AVX-512 CPUs (elsewhere at most one rounding apart, which decides only exact ties)."""
    return (p.double() * wp.double() + (q * wq).double()).float()


def _labels(index: torch.Tensor, n: int) -> torch.Tensor:
    """Query index (n = none) -> label value (0 = nothing, i + 1 = query i), uint8."""
    return torch.where(index == n, 0, index + 1).to(torch.uint8)


def _decide_at(size: tuple[int, int], main: torch.Tensor, pair: torch.Tensor | None,
               rule: _Rule) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels (uint8) and each pixel's winning logit at ``size`` from the decoder's maps ``main`` (M, h, w) and
    ``pair`` (P, h, w), as if every map had been upsampled bilinearly (see the module docstring). When most of the
    grid is band (maps that change at every pixel, as random weights give), or off the CPU, every map is upsampled
    instead: the same result at the former cost."""
    n = len(rule.query_channels)
    h, w = main.shape[1:]
    if main.device.type != "cpu":
        index, best, _ = rule.decide(_upsample(main, size), None if pair is None else _upsample(pair, size))
        return _labels(index, n), best
    index, best, key = rule.decide(main, pair)
    # cell (i, j) = grid pixels i..i+1, j..j+1 (the last row and column repeated, as the kernel reads them there)
    padded = F.pad(key[None, None].float(), (0, 1, 0, 1), mode="replicate")[0, 0]
    corner = padded[:-1, :-1]
    cell = (corner == padded[:-1, 1:]) & (corner == padded[1:, :-1]) & (corner == padded[1:, 1:])
    if float(cell.float().mean()) < 1 - MAX_BAND:
        index, best, _ = rule.decide(_upsample(main, size), None if pair is None else _upsample(pair, size))
        return _labels(index, n), best
    at = _resampling((h, w), size)
    code = (_labels(index, n) * 2 + cell).flatten().take(at.top_left).view(size)  # each pixel's cell
    labels = code >> 1
    out_best = _upsample(best.masked_fill(torch.isneginf(best), 0.0)[None], size)[0]
    by, bx = ((code & 1) == 0).nonzero(as_tuple=True)
    if by.numel():
        top, bottom = at.y0[by] * w, at.y1[by] * w
        left, right = at.x0[bx], at.x1[bx]
        corners = torch.cat([top + left, top + right, bottom + left, bottom + right])

        def band(maps: torch.Tensor) -> torch.Tensor:
            tl, tr, bl, br = maps.reshape(maps.shape[0], -1).index_select(1, corners).chunk(4, dim=1)
            wx0, wx1 = at.wx0[bx], at.wx1[bx]
            return _lerp(_lerp(tl, tr, wx0, wx1), _lerp(bl, br, wx0, wx1), at.wy0[by], at.wy1[by])

        band_index, band_best, _ = rule.decide(band(main), None if pair is None else band(pair))
        labels[by, bx] = _labels(band_index, n)
        out_best[by, bx] = band_best
    return labels, out_best


def _rois(labels: np.ndarray, count: int) -> dict[int, tuple[int, int, int, int]]:
    """Bounding box (x, y, w, h) of every label 1..count present, from each row's and column's set of labels (a
    bit per label)."""
    bits = np.left_shift(np.uint32(1), labels, dtype=np.uint32)
    rows, cols = np.bitwise_or.reduce(bits, axis=1), np.bitwise_or.reduce(bits, axis=0)
    rois = {}
    for value in range(1, count + 1):
        ys = np.flatnonzero(rows & (1 << value))
        if ys.size:
            xs = np.flatnonzero(cols & (1 << value))
            rois[value] = (int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1))
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
    if n_queries > 31:
        raise ValueError(f"postprocess handles at most 31 queries, got {n_queries}")
    rule = _rule(plan, mode, objects)
    main = out.main[0].float()
    pair = None if out.pair is None else out.pair[0].float()
    labels, best = _decide_at(tuple(size), main, pair, rule)
    flat = labels.view(-1)
    where = flat.nonzero().squeeze(1)  # labelled pixels: only their probabilities are needed
    chosen = flat[where]
    probability = torch.sigmoid(best.view(-1)[where])
    if score_threshold > 0:
        below = probability < score_threshold
        flat[where[below]] = 0
        where, chosen, probability = where[~below], chosen[~below], probability[~below]
    counts = torch.bincount(chosen, minlength=n_queries + 1)
    if min_pixels > 0:
        small = (counts > 0) & (counts < min_pixels)
        if small.any():
            dropped = small[chosen.long()]
            flat[where[dropped]] = 0
            chosen, probability = chosen[~dropped], probability[~dropped]
            counts = torch.bincount(chosen, minlength=n_queries + 1)
    sums = torch.bincount(chosen, weights=probability.double(), minlength=n_queries + 1)
    counts_list = counts.tolist()
    sums_list = sums.tolist()
    labels_np = labels.cpu().numpy()
    rois = _rois(labels_np, n_queries)
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
    return Result(labels_np, parts, query_maps=rule.queries(main, pair))
