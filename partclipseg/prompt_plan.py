"""From a query set to decoder prompts and output channels, built once per query set (docs/model.md, "Prompts and
their order" and "Object-part pairs"): which rows go through the main head, which (part, object) pairs through the
part branch, and which channels Pred-All gates by."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .queries import PartQuery, Vocabulary


@dataclass(frozen=True)
class Channel:
    """Where a map comes from: ``source`` is "main" (main head rows) or "pair" (part-branch rows)."""

    source: str
    index: int


@dataclass(frozen=True)
class PromptPlan:
    queries: tuple[PartQuery, ...]
    prompts: tuple[str, ...]  # text prompts, in decoder order
    background: bool  # the learned background embedding follows the prompts
    head_rows: tuple[int, ...]  # decoder rows decoded by the main head, in output order
    pair_parts: tuple[int, ...]  # part index (into vocabulary.parts) of each object-specific query
    pair_objects: tuple[int, ...]  # object index (into vocabulary.objects) of each object-specific query
    query_channels: tuple[Channel, ...]  # one per query
    query_objects: tuple[int | None, ...]  # object index of each query (None: bare part)
    object_channels: tuple[Channel, ...]  # objects then background (PartCLIPSeg), for Pred-All gating
    background_channel: Channel | None  # None: plain CLIPSeg (a constant logit competes instead)
    vocabulary: Vocabulary

    @property
    def num_parts(self) -> int:
        return len(self.vocabulary.parts)

    @property
    def num_prompts(self) -> int:
        """Decoder rows K (prompts plus the background row)."""
        return len(self.prompts) + int(self.background)

    @classmethod
    def build(
        cls, queries: Sequence[PartQuery], part_model: bool, all_rows: bool = False, anchor: Sequence[PartQuery] = ()
    ) -> "PromptPlan":
        """Plan a query set. ``all_rows`` decodes every prompt through the main head (training needs them).

        ``anchor``: the classes a PartCLIPSeg model was trained on, when known. The object half of a pair is the
        prompt at the object's index (docs/model.md, "Object-part pairs"), so it depends on the whole vocabulary; anchored, every
        query in the training vocabulary gets the prompts and indices of training, whatever else is asked, and
        Pred-All weighs all the trained objects."""
        queries = tuple(queries)
        if part_model:
            return cls._partclipseg(queries, all_rows, tuple(anchor))
        return cls._clipseg(queries)

    @classmethod
    def _partclipseg(cls, queries: tuple[PartQuery, ...], all_rows: bool, anchor: tuple[PartQuery, ...]) -> "PromptPlan":
        vocab = Vocabulary.from_queries(queries, anchor)
        n_parts, n_objects = len(vocab.parts), len(vocab.objects)
        background_row = n_parts + n_objects
        part_of = {p: i for i, p in enumerate(vocab.parts)}
        object_of = {o: i for i, o in enumerate(vocab.objects)}
        if all_rows:
            head_rows = list(range(background_row + 1))
        else:
            bare_rows = sorted({part_of[q.part] for q in queries if q.object is None})
            head_rows = bare_rows + [n_parts + o for o in range(n_objects)] + [background_row]
        pair_parts: list[int] = []
        pair_objects: list[int] = []
        channels: list[Channel] = []
        for q in queries:
            if q.object is None:
                channels.append(Channel("main", head_rows.index(part_of[q.part])))
            else:
                channels.append(Channel("pair", len(pair_parts)))
                pair_parts.append(part_of[q.part])
                pair_objects.append(object_of[q.object])
        object_rows = [n_parts + o for o in range(n_objects)] + [background_row]
        return cls(
            queries=queries,
            prompts=vocab.prompts,
            background=True,
            head_rows=tuple(head_rows),
            pair_parts=tuple(pair_parts),
            pair_objects=tuple(pair_objects),
            query_channels=tuple(channels),
            query_objects=tuple(None if q.object is None else object_of[q.object] for q in queries),
            object_channels=tuple(Channel("main", head_rows.index(r)) for r in object_rows),
            background_channel=Channel("pair", len(pair_parts)),
            vocabulary=vocab,
        )

    @classmethod
    def _clipseg(cls, queries: tuple[PartQuery, ...]) -> "PromptPlan":
        prompts = tuple(dict.fromkeys(q.phrase for q in queries))
        vocab = Vocabulary.from_queries(queries)
        object_of = {o: i for i, o in enumerate(vocab.objects)}
        return cls(
            queries=queries,
            prompts=prompts,
            background=False,
            head_rows=tuple(range(len(prompts))),
            pair_parts=(),
            pair_objects=(),
            query_channels=tuple(Channel("main", prompts.index(q.phrase)) for q in queries),
            query_objects=tuple(None if q.object is None else object_of[q.object] for q in queries),
            object_channels=(),
            background_channel=None,
            vocabulary=vocab,
        )
