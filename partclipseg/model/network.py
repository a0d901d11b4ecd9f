"""The PartCLIPSeg network on open_clip, split the way it is served (docs/model.md):

* :meth:`PartCLIPSeg.encode_image` -- once per frame: CLIP ViT taps after blocks 3/6/9 (CLS kept, before the
  final LN) -> visual adapter -> the three prompt-independent ``reduce`` projections.
* :meth:`PartCLIPSeg.encode_text` and :meth:`PartCLIPSeg.condition` -- once per query set: text features,
  background embedding, FiLM terms and the object-part pair embeddings (:class:`QueryTensors`).
* :meth:`PartCLIPSeg.decode` -- per frame, all prompts in one batched call.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import open_clip
import torch
import torch.nn.functional as F
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from torch import nn

from ..defaults import ADAPTER_MIX, OPEN_CLIP_ARCH, TOKEN_CACHE
from ..prompt_plan import PromptPlan
from ..queries import PartQuery
from .config import ModelConfig
from .decoder import Adapter, Decoder


@dataclass
class QueryTensors:
    """Everything the decoder needs that depends only on the query set (cached between frames)."""

    film_mul: torch.Tensor  # (K, D) FiLM scale per decoder row
    film_add: torch.Tensor  # (K, D)
    head_index: torch.Tensor  # (M,) int64: decoder rows through the main head
    pair_index: torch.Tensor  # (T+1, 2) int64: [part row, object row] per part-branch output (+ background)
    pair_film_mul: torch.Tensor  # (T+1, D)
    pair_film_add: torch.Tensor  # (T+1, D)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "QueryTensors":
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device) if (dtype is None or not t.is_floating_point()) else t.to(device, dtype)

        return QueryTensors(**{f.name: move(getattr(self, f.name)) for f in fields(self)})


@dataclass
class DecoderOutput:
    main: torch.Tensor  # (B, M, S, S) logits of the main head rows
    pair: torch.Tensor | None  # (B, T+1, S, S) object-specific part logits (+ background); None for CLIPSeg
    attentions: list[torch.Tensor | None] | None = None  # per decoder layer (B*K, heads, L, L), on request


def resize_positions(table: torch.Tensor, grid: int) -> torch.Tensor:
    """CLS + (g*g) positional table -> CLS + (grid*grid): bicubic, align_corners=False, no antialias (docs/model.md, "Image
    encoder")."""
    source = int(round((table.shape[0] - 1) ** 0.5))
    if source * source + 1 != table.shape[0]:
        raise ValueError(f"positional table with {table.shape[0]} rows is not CLS + a square grid")
    if source == grid:
        return table.clone()
    patches = table[1:].T.reshape(1, table.shape[1], source, source)
    resized = F.interpolate(patches.float(), size=(grid, grid), mode="bicubic", align_corners=False, antialias=False)
    return torch.cat([table[:1], resized.reshape(table.shape[1], grid * grid).T.to(table.dtype)])


def build_clip(config: ModelConfig) -> CLIP:
    """An open_clip CLIP (QuickGELU, OpenAI layout) with the sizes of ``config`` at the model's input size."""
    vision = CLIPVisionCfg(
        layers=config.vision_layers,
        width=config.vision_width,
        head_width=config.vision_width // config.vision_heads,
        mlp_ratio=config.vision_mlp / config.vision_width,
        patch_size=config.patch_size,
        image_size=config.image_size,
    )
    text = CLIPTextCfg(
        context_length=config.context_length,
        vocab_size=config.vocab_size,
        width=config.text_width,
        heads=config.text_heads,
        layers=config.text_layers,
        mlp_ratio=config.text_mlp / config.text_width,
    )
    return CLIP(embed_dim=config.projection_dim, vision_cfg=vision, text_cfg=text, quick_gelu=True)


class PartCLIPSeg(nn.Module):
    """PartCLIPSeg (``arch="partclipseg"``) or plain CLIPSeg (``arch="clipseg"``) with random initial weights;
    load real ones with :func:`partclipseg.checkpoint.load_checkpoint`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.clip = build_clip(config)
        # The checkpoint's own (224-res) positional table; the 352 table in clip.visual is derived from it.
        source = torch.randn(config.source_grid**2 + 1, config.vision_width) * config.vision_width**-0.5
        self.register_buffer("source_positions", source)
        self.set_source_positions(source)
        self.decoder = Decoder(config)
        # the classes it was trained on, where its checkpoint says (prompt plans are anchored to them)
        self.trained_classes: tuple[PartQuery, ...] = ()
        # "open" or "closed" (partclipseg.model_vocabulary) as its checkpoint says; None: not stated (random weights)
        self.vocabulary: str | None = None
        if config.is_part_model:
            self.visual_adapter = Adapter(config.vision_width, config.adapter_hidden)
            self.non_object_embedding = nn.Parameter(torch.randn(1, config.projection_dim) * config.projection_dim**-0.5)
        else:
            self.visual_adapter = None
            self.non_object_embedding = None

    @torch.no_grad()
    def set_source_positions(self, table: torch.Tensor) -> None:
        """Store the checkpoint's positional table and derive the model-resolution table from it, once."""
        self.source_positions.copy_(table)
        self.clip.visual.positional_embedding.copy_(resize_positions(table, self.config.grid))

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> reduced tapped activations (L, B, tokens, D), deepest tap first (decoder order)."""
        out = self.clip.visual.forward_intermediates(
            pixel_values,
            indices=list(self.config.extract_layers),
            stop_early=True,
            intermediates_only=True,
            output_fmt="NLC",
            output_extra_tokens=True,
        )
        taps = [torch.cat([cls, tokens], dim=1) for cls, tokens in zip(out["image_intermediates_prefix"], out["image_intermediates"])]
        if self.visual_adapter is not None:
            taps = [ADAPTER_MIX * self.visual_adapter(a) + (1.0 - ADAPTER_MIX) * a for a in taps]
        return torch.stack([reduce(a) for reduce, a in zip(self.decoder.reduces, reversed(taps))])

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (N, L), L <= context_length -> projected text features (N, projection_dim), not normalised.

        open_clip's ``encode_text`` for any L: the causal tower read at the end token (the largest id) gives the same
        features for the full 77 tokens and for tokens cut after the longest prompt's end (:func:`trim_tokens`).
        """
        clip = self.clip
        length = tokens.shape[1]
        x = clip.token_embedding(tokens) + clip.positional_embedding[:length]
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask[:length, :length]))
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return x @ clip.text_projection

    def condition(self, text_features: torch.Tensor, plan: PromptPlan) -> QueryTensors:
        """Text features of ``plan.prompts`` -> the query-only decoder inputs.

        Object-part text pairs replicate the released code (docs/model.md, "Object-part pairs"): the object half is
        ``cond[object_index]`` taken WITHOUT the part-count offset (the o-th *part* prompt's embedding);
        the checkpoints were trained that way.
        """
        decoder = self.decoder
        cond = text_features
        if plan.background:
            cond = torch.cat([cond, self.non_object_embedding.to(cond.dtype)])
        device = cond.device
        head_index = torch.tensor(plan.head_rows, dtype=torch.long, device=device)
        dim = self.config.reduce_dim
        if not self.config.is_part_model:
            empty = cond.new_zeros(0, dim)
            return QueryTensors(
                decoder.film_mul(cond), decoder.film_add(cond), head_index,
                torch.zeros(0, 2, dtype=torch.long, device=device), empty, empty,
            )
        background = cond.shape[0] - 1
        parts = list(plan.pair_parts) + [background]
        feature_objects = [plan.num_parts + o for o in plan.pair_objects] + [background]
        text_objects = list(plan.pair_objects) + [background]  # the released index quirk
        text_pairs = torch.cat([cond[text_objects], cond[parts]], dim=1)
        reduced = decoder.reduce_cond_embed(text_pairs)
        return QueryTensors(
            film_mul=decoder.film_mul(cond),
            film_add=decoder.film_add(cond),
            head_index=head_index,
            pair_index=torch.tensor(list(zip(parts, feature_objects)), dtype=torch.long, device=device),
            pair_film_mul=decoder.cond_film_mul(reduced),
            pair_film_add=decoder.cond_film_add(reduced),
        )

    def decode(
        self,
        features: torch.Tensor,
        query: QueryTensors,
        need_attentions: bool = False,
        attention_layers: Sequence[int] | None = None,
    ) -> DecoderOutput:
        """Reduced activations (L, B, tokens, D) + query tensors -> logits for every plan row, batched.

        ``need_attentions`` also returns each decoder layer's attention probabilities; ``attention_layers``
        limits them to those layer indices (the others are None), e.g. training needs only the last one.
        """
        decoder = self.decoder
        batch, tokens, dim = features.shape[1], features.shape[2], features.shape[3]
        rows = query.film_mul.shape[0]
        grid = self.config.grid
        x = features[0][:, None] * query.film_mul[None, :, None] + query.film_add[None, :, None]
        attentions = []
        for i, layer in enumerate(decoder.layers):
            if i > 0:
                x = features[i][:, None] + x.reshape(batch, rows, tokens, dim)
            wanted = need_attentions and (attention_layers is None or i in attention_layers)
            x, weights = layer(x.reshape(batch * rows, tokens, dim), wanted)
            attentions.append(weights)
        maps = x[:, 1:].transpose(1, 2).reshape(batch, rows, dim, grid, grid)
        selected = maps.index_select(1, query.head_index)
        main = decoder.transposed_convolution(selected.reshape(-1, dim, grid, grid))
        main = main.reshape(batch, -1, main.shape[-2], main.shape[-1])
        pair = None
        if self.config.is_part_model:
            both = torch.cat(
                [maps.index_select(1, query.pair_index[:, 0]), maps.index_select(1, query.pair_index[:, 1])], dim=2
            )
            mixed = decoder.part_obj_mlp(both.permute(0, 1, 3, 4, 2))
            mixed = mixed * query.pair_film_mul[None, :, None, None] + query.pair_film_add[None, :, None, None]
            pair = decoder.part_obj_with_cond_embed(mixed.permute(0, 1, 4, 2, 3).reshape(-1, dim, grid, grid))
            pair = pair.reshape(batch, -1, pair.shape[-2], pair.shape[-1])
        return DecoderOutput(main=main, pair=pair, attentions=attentions if need_attentions else None)


_TOKENIZERS: dict[int, open_clip.tokenizer.SimpleTokenizer] = {}


def trim_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Token ids (N, 77) cut after the longest prompt's end token: the same text features (see
    :meth:`PartCLIPSeg.encode_text`) for a fraction of the compute (a part name is a few tokens)."""
    return tokens[:, :int(tokens.argmax(dim=-1).max()) + 1]


def tokenize(prompts: list[str], context_length: int) -> torch.Tensor:
    """CLIP BPE tokens (open_clip tokenizer, ships its vocabulary: works offline)."""
    if context_length not in _TOKENIZERS:
        _TOKENIZERS[context_length] = open_clip.get_tokenizer(OPEN_CLIP_ARCH, context_length=context_length)
    tokenizer = _TOKENIZERS[context_length]
    tokens = tokenizer(prompts)
    # open_clip caches the BPE of every word it has seen: bounded here, so that queries made of ever new words (from a
    # topic, a service) do not grow memory; the cache starts again from the special tokens it holds initially
    cache = getattr(tokenizer, "cache", None)
    if isinstance(cache, dict) and len(cache) > TOKEN_CACHE:
        specials = [tokenizer.decoder[i] for i in tokenizer.all_special_ids]
        tokenizer.cache = {t: t for t in specials}
    return tokens
