"""The two per-frame graphs every exported backend runs, named once (docs/deployment.md, "The two graphs").

* image encoder: ``pixel_values`` (1, 3, S, S) -> ``features`` (L, 1, tokens, D), the *reduced* taps of
  :meth:`PartCLIPSeg.encode_image` (the reduce projections are prompt-independent, so this is exact and moves
  12x less data across the boundary than the raw 768-wide taps);
* decoder: ``features`` + the cached :class:`QueryTensors` fields -> ``main`` (1, M, S, S) and, for PartCLIPSeg,
  ``pair`` (1, T+1, S, S);
* text encoder (run when the query set changes): ``tokens`` (N, L) -> ``text_features`` (N, projection_dim), the
  prompts' token ids cut after the longest one's end token (:func:`partclipseg.model.network.trim_tokens`).

The query-dependent row counts are the only dynamic dimensions. Their names, bounds for a number of queries,
the tensors' dtypes and their order are defined here and used by the ONNX export, ONNX Runtime, the TensorRT
optimisation profile and binding checks, and the torch CUDA-graph buckets.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .network import DecoderOutput, PartCLIPSeg, QueryTensors
from ..queries import QueryError

# Dynamic axes: decoder rows K (prompts + background), main-head rows M, part-branch rows T+1; text encoder: N
# prompts of L tokens.
PROMPTS, HEAD_ROWS, PAIR_ROWS = "prompts", "head_rows", "pair_rows"
TEXTS, TEXT_TOKENS = "texts", "text_tokens"
INDEX_DTYPE = torch.int32  # int32 indices: every TensorRT 10.x parses them, ONNX Gather takes them


@dataclass(frozen=True)
class RowBounds:
    """Row counts of the query-dependent decoder inputs (used as upper bounds or as actual counts)."""

    prompts: int
    head_rows: int
    pair_rows: int  # 0 for plain CLIPSeg (no part branch)

    def as_dict(self) -> dict[str, int]:
        return {PROMPTS: self.prompts, HEAD_ROWS: self.head_rows, PAIR_ROWS: self.pair_rows}

    def fits(self, limit: "RowBounds") -> bool:
        return self.prompts <= limit.prompts and self.head_rows <= limit.head_rows and self.pair_rows <= limit.pair_rows


def row_bounds(config: ModelConfig, max_queries: int) -> RowBounds:
    """The largest row counts ``max_queries`` queries can produce (see :mod:`partclipseg.prompt_plan`).

    PartCLIPSeg: K = parts + objects + background <= 2Q + 1; the main head takes any subset of the K rows
    (M <= 2Q + 1 covers training plans that decode every row); T + 1 = object-specific queries + background
    <= Q + 1. Plain CLIPSeg: one prompt per distinct query, all through the main head.
    """
    if max_queries < 1:
        raise ValueError(f"max_queries must be at least 1, got {max_queries}")
    if config.is_part_model:
        return RowBounds(2 * max_queries + 1, 2 * max_queries + 1, max_queries + 1)
    return RowBounds(max_queries, max_queries, 0)


def row_counts(query: QueryTensors) -> RowBounds:
    """The actual row counts of one query set."""
    return RowBounds(query.film_mul.shape[0], query.head_index.shape[0], query.pair_index.shape[0])


def check_rows(query: QueryTensors, limit: RowBounds, max_queries: int) -> None:
    """Raise :class:`QueryError` when a query set needs more rows than graphs built for ``max_queries`` take."""
    rows = row_counts(query)
    if not rows.fits(limit):
        raise QueryError(
            f"this query set needs {rows.as_dict()} decoder rows but the exported graphs/engines take at most "
            f"{limit.as_dict()} (built for {max_queries} queries); use fewer queries or re-export with a larger "
            "max_queries"
        )


def graph_query(query: QueryTensors, device: torch.device, limit: RowBounds, max_queries: int) -> QueryTensors:
    """A query set as the exported graphs take it (checked against their bounds, on ``device``, int32 indices)."""
    check_rows(query, limit, max_queries)
    moved = query.to(device, torch.float32)
    return dataclasses.replace(moved, head_index=moved.head_index.to(INDEX_DTYPE),
                               pair_index=moved.pair_index.to(INDEX_DTYPE))


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: name, dtype and dims (ints, or a dynamic axis name)."""

    name: str
    dtype: torch.dtype
    dims: tuple[int | str, ...]

    def shape(self, rows: RowBounds) -> tuple[int, ...]:
        """Concrete shape with the dynamic axes set to ``rows``."""
        sizes = rows.as_dict()
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.dims)

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.dims) if isinstance(d, str)}


@dataclass(frozen=True)
class GraphSpec:
    """Inputs and outputs of one graph, in binding order."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def encoder_spec(config: ModelConfig) -> GraphSpec:
    size = config.image_size
    features = (len(config.extract_layers), 1, config.tokens, config.reduce_dim)
    return GraphSpec(
        "encoder",
        (TensorSpec("pixel_values", torch.float32, (1, 3, size, size)),),
        (TensorSpec("features", torch.float32, features),),
    )


def decoder_spec(config: ModelConfig) -> GraphSpec:
    size, dim = config.image_size, config.reduce_dim
    features = (len(config.extract_layers), 1, config.tokens, dim)
    inputs = [
        TensorSpec("features", torch.float32, features),
        TensorSpec("film_mul", torch.float32, (PROMPTS, dim)),
        TensorSpec("film_add", torch.float32, (PROMPTS, dim)),
        TensorSpec("head_index", INDEX_DTYPE, (HEAD_ROWS,)),
    ]
    outputs = [TensorSpec("main", torch.float32, (1, HEAD_ROWS, size, size))]
    if config.is_part_model:
        inputs += [
            TensorSpec("pair_index", INDEX_DTYPE, (PAIR_ROWS, 2)),
            TensorSpec("pair_film_mul", torch.float32, (PAIR_ROWS, dim)),
            TensorSpec("pair_film_add", torch.float32, (PAIR_ROWS, dim)),
        ]
        outputs.append(TensorSpec("pair", torch.float32, (1, PAIR_ROWS, size, size)))
    return GraphSpec("decoder", tuple(inputs), tuple(outputs))


def text_spec(config: ModelConfig) -> GraphSpec:
    return GraphSpec(
        "text",
        (TensorSpec("tokens", INDEX_DTYPE, (TEXTS, TEXT_TOKENS)),),
        (TensorSpec("text_features", torch.float32, (TEXTS, config.projection_dim)),),
    )


def text_bounds(config: ModelConfig, max_queries: int) -> dict[str, int]:
    """Largest text-graph dims: every prompt of ``max_queries`` queries new at once (2Q: parts and objects), the
    full context."""
    return {TEXTS: 2 * max_queries, TEXT_TOKENS: config.context_length}


def decoder_feeds(features: torch.Tensor, query: QueryTensors, config: ModelConfig) -> dict[str, torch.Tensor]:
    """Decoder graph inputs by name, in binding order, with the graph's dtypes (fp32 floats, int32 indices)."""
    feeds = {
        "features": features.float(),
        "film_mul": query.film_mul.float(),
        "film_add": query.film_add.float(),
        "head_index": query.head_index.to(INDEX_DTYPE),
    }
    if config.is_part_model:
        feeds["pair_index"] = query.pair_index.to(INDEX_DTYPE)
        feeds["pair_film_mul"] = query.pair_film_mul.float()
        feeds["pair_film_add"] = query.pair_film_add.float()
    return {k: v.contiguous() for k, v in feeds.items()}


def decoder_output(outputs: dict[str, torch.Tensor]) -> DecoderOutput:
    return DecoderOutput(main=outputs["main"], pair=outputs.get("pair"))


class ImageEncoderGraph(nn.Module):
    """What the image-encoder graph computes: :meth:`PartCLIPSeg.encode_image`."""

    def __init__(self, model: PartCLIPSeg) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixel_values)


class TextEncoderGraph(nn.Module):
    """What the text-encoder graph computes: :meth:`PartCLIPSeg.encode_text`."""

    def __init__(self, model: PartCLIPSeg) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens)


class DecoderGraph(nn.Module):
    """What the decoder graph computes: :meth:`PartCLIPSeg.decode` on named tensors (see :func:`decoder_spec`)."""

    def __init__(self, model: PartCLIPSeg) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        features: torch.Tensor,
        film_mul: torch.Tensor,
        film_add: torch.Tensor,
        head_index: torch.Tensor,
        pair_index: torch.Tensor | None = None,
        pair_film_mul: torch.Tensor | None = None,
        pair_film_add: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        if pair_index is None:  # plain CLIPSeg: decode() never reads the part-branch fields
            pair_index = head_index.new_zeros(0, 2)
            pair_film_mul = pair_film_add = film_mul.new_zeros(0, film_mul.shape[1])
        query = QueryTensors(film_mul, film_add, head_index, pair_index, pair_film_mul, pair_film_add)
        out = self.model.decode(features, query)
        return (out.main,) if out.pair is None else (out.main, out.pair)
