"""Query-count buckets for shape-static execution (torch CUDA graphs, torch.compile without recompiles).

A query set is padded once, when it is set, to the row counts of the smallest bucket (1, 2, 4, 8, 16 queries by
default) that holds it; padded rows get zero FiLM terms and index row 0, so they compute values nobody reads.
Decoder rows are independent sequences (attention is within a row), so the real rows are unchanged, and the
outputs are sliced back to the real row counts.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..model.stages import RowBounds, row_bounds, row_counts
from ..model.config import ModelConfig
from ..model.network import DecoderOutput, QueryTensors
from ..queries import QueryError


@dataclass
class PaddedQuery(QueryTensors):
    """Query tensors padded to a bucket's row counts; ``rows`` are the real ones."""

    rows: RowBounds = RowBounds(0, 0, 0)
    bucket: int = 0


def choose_bucket(rows: RowBounds, config: ModelConfig, buckets: tuple[int, ...]) -> int:
    """The smallest bucket whose row bounds hold ``rows``."""
    for bucket in sorted(buckets):
        if rows.fits(row_bounds(config, bucket)):
            return bucket
    raise QueryError(f"this query set needs {rows.as_dict()} decoder rows, more than the largest bucket "
                     f"({max(buckets)} queries) holds; use fewer queries")


def pad_query(query: QueryTensors, config: ModelConfig, buckets: tuple[int, ...]) -> PaddedQuery:
    rows = row_counts(query)
    bucket = choose_bucket(rows, config, buckets)
    bounds = row_bounds(config, bucket).as_dict()
    extra = {  # field -> rows to add (first dimension)
        "film_mul": bounds["prompts"] - rows.prompts,
        "film_add": bounds["prompts"] - rows.prompts,
        "head_index": bounds["head_rows"] - rows.head_rows,
        "pair_index": bounds["pair_rows"] - rows.pair_rows,
        "pair_film_mul": bounds["pair_rows"] - rows.pair_rows,
        "pair_film_add": bounds["pair_rows"] - rows.pair_rows,
    }
    padded = {}
    for f in fields(QueryTensors):
        tensor = getattr(query, f.name)
        padded[f.name] = F.pad(tensor, (0, 0) * (tensor.dim() - 1) + (0, extra[f.name])) if extra[f.name] else tensor
    return PaddedQuery(**padded, rows=rows, bucket=bucket)


def unpad(out: DecoderOutput, rows: RowBounds) -> DecoderOutput:
    """Outputs of a padded call, cut back to the real rows."""
    pair = None if out.pair is None else out.pair[:, :rows.pair_rows]
    return DecoderOutput(main=out.main[:, :rows.head_rows], pair=pair)


def as_plain(query: QueryTensors) -> QueryTensors:
    """The :class:`QueryTensors` fields alone (what a compiled or captured function takes)."""
    return QueryTensors(**{f.name: getattr(query, f.name) for f in fields(QueryTensors)})


def empty_like_rows(query: QueryTensors) -> QueryTensors:
    """Zero-filled tensors with the shapes of ``query`` (static buffers for a CUDA graph)."""
    return QueryTensors(**{f.name: torch.zeros_like(getattr(query, f.name)) for f in fields(QueryTensors)})
