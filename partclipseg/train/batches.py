"""Dataset samples -> training batches at model resolution, in the training vocabulary (docs/model.md,
"Training losses").

The training vocabulary is the dataset's seen classes; pixels of unseen objects and of objects without seen parts
become background, unlabelled part pixels are excluded from the part terms. Images go through the one
preprocessing function (PIL bilinear to 352, ImageNet mean/std), label maps are resized nearest, and horizontal
flips are the only augmentation, as in the release. Images are fed as RGB (the release fed detectron2's BGR
tensors to a processor that assumes RGB; inference uses RGB, and so does this).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.classes import ClassSet
from ..data.dataset import UNLABELLED, PartSample
from ..prompt_plan import PromptPlan
from ..preprocess import preprocess


@dataclass
class Batch:
    pixels: torch.Tensor  # (B, 3, S, S)
    parts: torch.Tensor  # (B, S, S) int64: training class index, -1 none
    objects: torch.Tensor  # (B, S, S) int64: training object index (sorted vocabulary), -1 background


class TrainingVocabulary:
    """Dataset ids -> training ids, and the decoder plan over the training classes."""

    def __init__(self, classes: ClassSet) -> None:
        self.classes = classes
        seen = classes.seen
        if not seen:
            raise ValueError(f"{classes.name}: every object is unseen, nothing to train on")
        self.plan = PromptPlan.build(seen, part_model=True, all_rows=True)
        objects = self.plan.vocabulary.objects
        class_map = [seen.index(c) if c in seen else UNLABELLED for c in classes.classes]
        object_map = [objects.index(o) if o in objects else UNLABELLED for o in classes.objects]
        # index 0 holds UNLABELLED so that a label map can index the lookup with ``labels + 1``
        self._class_lookup = np.asarray([UNLABELLED] + class_map, dtype=np.int64)
        self._object_lookup = np.asarray([UNLABELLED] + object_map, dtype=np.int64)

    def targets(self, sample: PartSample, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, S) training part and object targets of one sample (nearest resize)."""
        maps = np.stack([self._class_lookup[sample.parts + 1], self._object_lookup[sample.objects + 1]])
        resized = F.interpolate(torch.from_numpy(maps)[None].float(), size=(size, size), mode="nearest")[0].long()
        return resized[0], resized[1]

    def batch(self, samples: list[PartSample], flips: list[bool], size: int) -> Batch:
        pixels, parts, objects = [], [], []
        for sample, flip in zip(samples, flips):
            image = sample.image[:, ::-1] if flip else sample.image
            pixels.append(preprocess(np.ascontiguousarray(image), size))
            part, obj = self.targets(sample, size)
            if flip:
                part, obj = part.flip(-1), obj.flip(-1)
            parts.append(part)
            objects.append(obj)
        return Batch(torch.cat(pixels), torch.stack(parts), torch.stack(objects))
