"""Model sizes. Every field but the architecture constants in :mod:`partclipseg.defaults` is read off
checkpoint tensors by :func:`partclipseg.checkpoint.infer_config`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..defaults import DECODER_HEADS, EXTRACT_LAYERS, HEAD_WIDTH, INPUT_SIZE

ARCHS = ("partclipseg", "clipseg")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of a PartCLIPSeg (or plain CLIPSeg) network. Defaults = the released ViT-B/16 model."""

    arch: str = "partclipseg"
    # vision tower (CLIP ViT, QuickGELU)
    vision_width: int = 768
    vision_layers: int = 12
    vision_mlp: int = 3072
    patch_size: int = 16
    source_grid: int = 14  # grid of the checkpoint's positional table (224 / 16)
    # text tower
    text_width: int = 512
    text_layers: int = 12
    text_mlp: int = 2048
    vocab_size: int = 49408
    context_length: int = 77
    projection_dim: int = 512
    # decoder
    reduce_dim: int = 64
    decoder_heads: int = DECODER_HEADS
    decoder_mlp: int = 2048
    extract_layers: tuple[int, ...] = field(default=EXTRACT_LAYERS)
    # PartCLIPSeg only
    adapter_hidden: int = 192
    part_obj_mlp_layers: int = 1  # 1: Linear (HEAD 8abceef), 2: Linear-ReLU-Linear (release d75a599)
    image_size: int = INPUT_SIZE

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if max(self.extract_layers) >= self.vision_layers:
            raise ValueError(f"taps {self.extract_layers} need more than {self.vision_layers} vision layers")
        if self.image_size % self.patch_size:
            raise ValueError(f"image size {self.image_size} is not a multiple of the patch size {self.patch_size}")
        if self.part_obj_mlp_layers not in (1, 2):
            raise ValueError(f"part_obj_mlp_layers must be 1 or 2, got {self.part_obj_mlp_layers}")

    @property
    def is_part_model(self) -> bool:
        return self.arch == "partclipseg"

    @property
    def vision_heads(self) -> int:
        return max(1, self.vision_width // HEAD_WIDTH)

    @property
    def text_heads(self) -> int:
        return max(1, self.text_width // HEAD_WIDTH)

    @property
    def grid(self) -> int:
        """Patch grid at the model's input size (22 at 352x352)."""
        return self.image_size // self.patch_size

    @property
    def tokens(self) -> int:
        return self.grid * self.grid + 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["extract_layers"] = list(self.extract_layers)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        values = dict(data)
        if "extract_layers" in values:
            values["extract_layers"] = tuple(values["extract_layers"])
        return cls(**values)


def tiny_config(arch: str = "partclipseg", **overrides: Any) -> ModelConfig:
    """A small configuration with the official key layout (as the reference's small checkpoint):
    width 64, 10 vision layers, 2 text layers, decoder MLP 128. For tests and the trained demo model."""
    values: dict[str, Any] = dict(
        arch=arch,
        vision_width=64,
        vision_layers=10,
        vision_mlp=256,
        text_width=64,
        text_layers=2,
        text_mlp=256,
        decoder_mlp=128,
        adapter_hidden=16,
    )
    values.update(overrides)
    return ModelConfig(**values)
