"""PartCLIPSeg's training losses as the released code computes them, quirks included (docs/model.md, "Training
losses"), and the options this package adds (class balancing, the differentiable L_sep: docs/training.md).

Targets at model resolution: ``parts`` (B, S, S) holds the training-class index of each labelled part pixel and
``objects`` (B, S, S) the training-object index, both -1 elsewhere; channels follow the training plan
(``PromptPlan.build(classes, part_model=True, all_rows=True)``)."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..defaults import (ATTENTION_KERNEL, ATTENTION_SIGMA, ATTENTION_THRESHOLD, LOSS_BACKGROUND_WEIGHT,
                        LOSS_ENHANCEMENT_WEIGHT, LOSS_OBJECT_WEIGHT, LOSS_PART_WEIGHT, LOSS_SEPARATION_WEIGHT,
                        SEPARATION_MODES, SEPARATION_TEMPERATURE)
from ..model.network import DecoderOutput
from ..prompt_plan import PromptPlan


@dataclass(frozen=True)
class LossConfig:
    object_weight: float = LOSS_OBJECT_WEIGHT
    part_weight: float = LOSS_PART_WEIGHT
    separation_weight: float = LOSS_SEPARATION_WEIGHT
    enhancement_weight: float = LOSS_ENHANCEMENT_WEIGHT
    background_weight: float = LOSS_BACKGROUND_WEIGHT
    threshold: float = ATTENTION_THRESHOLD
    separation: str = "released"
    temperature: float = SEPARATION_TEMPERATURE
    balance_objects: bool = False  # not in the release: see class_pixel_weights
    balance_parts: bool = False  # not in the release: see class_pixel_weights

    def __post_init__(self) -> None:
        if self.separation not in SEPARATION_MODES:
            raise ValueError(f"separation must be one of {SEPARATION_MODES}, got {self.separation!r}")

    @property
    def uses_attention(self) -> bool:
        return self.separation_weight > 0 or self.enhancement_weight > 0


@dataclass
class Losses:
    total: torch.Tensor
    object_part: torch.Tensor
    object: torch.Tensor
    part: torch.Tensor
    separation: torch.Tensor
    enhancement: torch.Tensor

    def values(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).detach()) for f in fields(self)}


def _bce(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, targets, weight=weight)


def class_pixel_weights(labels: torch.Tensor) -> torch.Tensor:
    """(B, S, S) targets (-1 = unlabelled) -> per-pixel weights under which every class present in the batch weighs
    the same in total (mean 1 over labelled pixels); unlabelled pixels weigh 1. Not in the release: with plain
    weights a class that covers most pixels wins early on (a pot next to a knife takes every object pixel; a
    body next to its handle takes the handle)."""
    weights = torch.ones(labels.shape, dtype=torch.float32, device=labels.device)
    inside = labels >= 0
    if inside.any():
        counts = torch.bincount(labels[inside]).float()
        present = counts > 0
        per_class = torch.zeros_like(counts)
        per_class[present] = counts.sum() / (present.sum() * counts[present])
        weights[inside] = per_class[labels[inside]]
    return weights


def mask_losses(
    out: DecoderOutput, parts: torch.Tensor, objects: torch.Tensor, plan: PromptPlan, background_weight: float,
    balance_objects: bool = False, balance_parts: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (L_objpart, L_obj, L_part) on (B, S, S) targets (docs/model.md, "Training losses"). ``balance_objects`` weighs the
    pixels of the object term by :func:`class_pixel_weights` of the objects; ``balance_parts`` weighs the labelled
    pixels of the two part terms by those of the (object-specific) part classes."""
    n_parts, n_objects, n_classes = plan.num_parts, len(plan.vocabulary.objects), len(plan.pair_parts)
    main = out.main.permute(0, 2, 3, 1)  # (B, S, S, P + O + 1)
    pair = out.pair.permute(0, 2, 3, 1)  # (B, S, S, T + 1)
    labelled = parts >= 0
    in_object = objects >= 0
    class_parts = torch.tensor(plan.pair_parts, dtype=torch.long, device=parts.device)

    main_targets = torch.zeros_like(main)
    main_targets[..., :n_parts][labelled] = F.one_hot(class_parts[parts[labelled]], n_parts).to(main.dtype)
    main_targets[..., n_parts:-1][in_object] = F.one_hot(objects[in_object], n_objects).to(main.dtype)
    main_targets[..., -1][~in_object] = 1.0
    pair_targets = torch.zeros_like(pair)
    pair_targets[..., :n_classes][labelled] = F.one_hot(parts[labelled], n_classes).to(pair.dtype)
    pair_targets[..., -1][~in_object] = 1.0

    pair_weight = torch.ones(n_classes + 1, device=pair.device, dtype=pair.dtype)
    pair_weight[-1] = background_weight
    main_weight = torch.ones(main.shape[-1], device=main.device, dtype=main.dtype)
    main_weight[-1] = background_weight

    zero = main.sum() * 0.0
    object_part, part = zero, zero
    if labelled.any():
        pixel = class_pixel_weights(parts)[labelled][:, None].to(main.dtype) if balance_parts else None
        pair_pixel = pair_weight if pixel is None else pair_weight * pixel
        object_part = _bce(pair[labelled], pair_targets[labelled], pair_pixel)
        part = _bce(main[..., :n_parts][labelled], main_targets[..., :n_parts][labelled], pixel)
    background = ~in_object
    if in_object.any() and background.any():  # the release would turn the whole step's loss into 0 here
        object_part = object_part + _bce(pair[background], pair_targets[background], pair_weight)
    object_weight = main_weight[n_parts:]
    if balance_objects:
        object_weight = object_weight * class_pixel_weights(objects).to(main.dtype)[..., None]
    obj = _bce(main[..., n_parts:], main_targets[..., n_parts:], object_weight)
    return object_part, obj, part


def gaussian_kernel(size: int = ATTENTION_KERNEL, sigma: float = ATTENTION_SIGMA) -> torch.Tensor:
    """The Attend-and-Excite smoothing kernel: exp(-((x - mu) / (2 sigma))^2) per axis, normalised (size x size)."""
    x = torch.arange(size, dtype=torch.float32)
    line = torch.exp(-(((x - (size - 1) / 2) / (2 * sigma)) ** 2))
    kernel = line[:, None] * line[None, :]
    return kernel / kernel.sum()


def _smooth(maps: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(N, r, r) -> reflect-padded, smoothed (N, r, r)."""
    pad = kernel.shape[-1] // 2
    padded = F.pad(maps[:, None], (pad, pad, pad, pad), mode="reflect")
    return F.conv2d(padded, kernel[None, None].to(maps)).squeeze(1)


def _nearest(labels: torch.Tensor, ids: list[int], grid: int) -> torch.Tensor:
    """(S, S) label map -> (len(ids), grid, grid) float masks, nearest resize as F.interpolate does it."""
    if not ids:
        return labels.new_zeros((0, grid, grid), dtype=torch.float32)
    masks = torch.stack([(labels == i) for i in ids]).float()
    return F.interpolate(masks[None], size=(grid, grid), mode="nearest")[0]


def _object_ids(objects: torch.Tensor) -> list[int]:
    """Objects present, as the release lists them: unique ids without the last one (the ignore label, or, when the
    image has no background, its largest object)."""
    present = sorted(int(o) for o in torch.unique(objects))
    if present and present[0] < 0:
        return present[1:]
    return present[:-1]


def attention_losses(
    attention: torch.Tensor, parts: torch.Tensor, objects: torch.Tensor, plan: PromptPlan, config: LossConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (L_sep, L_enh) from the last decoder layer's attention (B*K, heads, L, L) (docs/model.md,
    "Training losses")."""
    batch = parts.shape[0]
    rows = attention.shape[0] // batch
    grid = int(round(math.sqrt(attention.shape[-1] - 1)))
    kernel = gaussian_kernel()
    # every (image, class present) pair of the batch; its attention = mean of the part row and the object row
    present = [[int(j) for j in torch.unique(parts[b]) if j >= 0] for b in range(batch)]
    pairs = [(b, j) for b in range(batch) for j in present[b]]
    zero = attention.new_zeros(())
    if not pairs:
        return zero, zero
    image = torch.tensor([b for b, _ in pairs], device=attention.device)
    cls = torch.tensor([j for _, j in pairs], device=attention.device)
    part_rows = torch.tensor(plan.pair_parts, device=attention.device)[cls]
    object_rows = torch.tensor(plan.pair_objects, device=attention.device)[cls] + plan.num_parts
    picked = attention[torch.cat([image, image]) * rows + torch.cat([part_rows, object_rows])]  # one gather
    merged = picked[..., 1:, 1:].mean(1).unflatten(0, (2, len(pairs))).mean(0)  # (N, queries, keys), no CLS
    masks = torch.cat([_nearest(parts[b], present[b], grid) for b in range(batch) if present[b]]).flatten(1)
    average = torch.einsum("nq,nqk->nk", masks, merged).div(grid * grid).reshape(-1, grid, grid)  # mean over all queries
    low = average.amin((1, 2), keepdim=True)
    high = average.amax((1, 2), keepdim=True)
    normalised = _smooth((average - low) / (high - low + 1e-9), kernel)
    peaks = _smooth(average, kernel).amax((1, 2))
    separation, enhancement = zero, zero
    counted, start = 0, 0
    for b in range(batch):
        count = len(present[b])
        if not count:
            continue
        image_maps = normalised[start:start + count]
        weakest = peaks[start:start + count].min().clamp(max=1.0)
        start += count
        for region in _nearest(objects[b], _object_ids(objects[b]), grid):
            counted += 1
            enhancement = enhancement + (1.0 - weakest)
            if config.separation == "soft":
                soft = torch.sigmoid((image_maps - config.threshold) / config.temperature) * region
                union = soft.amax(0)
                separation = separation + (soft.sum(0) - union).sum() / (union.sum() + 1e-9)
            else:
                with torch.no_grad():
                    hits = ((image_maps > config.threshold).float() * region).sum(0)
                    separation = separation + (hits > 1).sum() / ((hits >= 1).sum() + 1e-9)
    scale = max(counted, 1) * batch
    return separation / scale, enhancement / scale


def partclipseg_losses(
    out: DecoderOutput, parts: torch.Tensor, objects: torch.Tensor, plan: PromptPlan, config: LossConfig = LossConfig()
) -> Losses:
    """All five terms and their weighted sum (non-finite totals become 0, as in the release)."""
    object_part, obj, part = mask_losses(out, parts, objects, plan, config.background_weight, config.balance_objects,
                                         config.balance_parts)
    zero = object_part.new_zeros(())
    separation, enhancement = zero, zero
    if config.uses_attention:
        if not out.attentions:
            raise ValueError("the attention losses need decode(..., need_attentions=True)")
        separation, enhancement = attention_losses(out.attentions[-1], parts, objects, plan, config)
    total = (object_part + config.object_weight * obj + config.part_weight * part
             + config.separation_weight * separation + config.enhancement_weight * enhancement)
    return Losses(torch.nan_to_num(total, nan=0.0, posinf=0.0, neginf=0.0), object_part, obj, part, separation,
                  enhancement)
