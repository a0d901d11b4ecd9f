"""CLIPSeg's FiLM decoder and PartCLIPSeg's object-specific part branch (docs/model.md, "Decoder" and
"Object-part pairs").

Module and parameter names follow the official checkpoint (``decoder.film_mul``, ``decoder.layers.0.self_attn.q_proj``,
``decoder.transposed_convolution.0`` ...), so the key mapping for the decoder is the identity.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class DecoderAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections (HF CLIPSeg layout)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"decoder width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        n, length, dim = x.shape
        shape = (n, length, self.heads, self.head_dim)
        q = self.q_proj(x).reshape(shape).transpose(1, 2)
        k = self.k_proj(x).reshape(shape).transpose(1, 2)
        v = self.v_proj(x).reshape(shape).transpose(1, 2)
        weights = None
        if need_weights:
            weights = torch.softmax((q * self.head_dim**-0.5) @ k.transpose(-1, -2), dim=-1)
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(n, length, dim)), weights


class DecoderMLP(nn.Module):
    """fc1 -> ReLU -> fc2. Eager CPU inference runs it in token chunks so the wide hidden activation stays in
    cache (2.5x faster at K=33 prompts on 2 cores); training, CUDA and export use the plain expression."""

    chunk_tokens = 512

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self.fc2(F.relu(self.fc1(x)))
        flat = x.reshape(-1, x.shape[-1])
        out = torch.empty_like(flat)
        for start in range(0, flat.shape[0], self.chunk_tokens):
            piece = flat[start:start + self.chunk_tokens]
            out[start:start + self.chunk_tokens] = self.fc2(self.fc1(piece).relu_())
        return out.reshape(x.shape)


class DecoderLayer(nn.Module):
    """Post-norm transformer layer: x = LN1(x + MHA(x)); x = LN2(x + MLP(x)); ReLU, no dropout."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attn = DecoderAttention(dim, heads)
        self.layer_norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = DecoderMLP(dim, hidden)
        self.layer_norm2 = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.self_attn(x, need_weights)
        x = self.layer_norm1(x + attended)
        return self.layer_norm2(x + self.mlp(x)), weights


def refined_head(dim: int, patch_size: int) -> nn.Sequential:
    """CLIPSeg's "refined" head: 22 -> 22 -> 88 -> 352 for patch 16 (ConvTranspose weights are [in, out, k, k])."""
    k = patch_size // 4
    return nn.Sequential(
        nn.Conv2d(dim, dim, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(dim, dim // 2, kernel_size=k, stride=k),
        nn.ReLU(),
        nn.ConvTranspose2d(dim // 2, 1, kernel_size=k, stride=k),
    )


class Adapter(nn.Module):
    """PartCLIPSeg's visual adapter: Linear -> ReLU -> Linear -> ReLU, no biases."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, dim, bias=False), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Decoder(nn.Module):
    """The shared FiLM decoder, its refined head and (PartCLIPSeg) the object-specific part branch."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        dim, proj = config.reduce_dim, config.projection_dim
        self.film_mul = nn.Linear(proj, dim)
        self.film_add = nn.Linear(proj, dim)
        self.reduces = nn.ModuleList(nn.Linear(config.vision_width, dim) for _ in config.extract_layers)
        self.layers = nn.ModuleList(
            DecoderLayer(dim, config.decoder_heads, config.decoder_mlp) for _ in config.extract_layers
        )
        self.transposed_convolution = refined_head(dim, config.patch_size)
        if config.is_part_model:
            self.cond_film_mul = nn.Linear(proj, dim)
            self.cond_film_add = nn.Linear(proj, dim)
            self.reduce_cond_embed = nn.Linear(2 * proj, proj)
            mlp: list[nn.Module] = [nn.Linear(2 * dim, dim)]
            if config.part_obj_mlp_layers == 2:
                mlp += [nn.ReLU(), nn.Linear(dim, dim)]
            self.part_obj_mlp = nn.Sequential(*mlp)
            self.part_obj_with_cond_embed = refined_head(dim, config.patch_size)
