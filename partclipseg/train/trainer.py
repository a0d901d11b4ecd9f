"""The PartCLIPSeg trainer: the released trainable set, optimiser and schedule (docs/model.md, "Training losses"),
the options for training from scratch, and resumable official-layout checkpoints (docs/training.md). Batches are
drawn from (seed, iteration), so a resumed run continues exactly as an uninterrupted one."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..checkpoint import CheckpointError, load_checkpoint, save_official
from ..data.dataset import PartDataset
from ..defaults import (TRAIN_BATCH, TRAIN_CHECKPOINT_PERIOD, TRAIN_CLIP_NORM, TRAIN_ITERATIONS, TRAIN_LR,
                        TRAIN_POLY_POWER, TRAIN_SEED, TRAIN_WEIGHT_DECAY)
from ..model.network import PartCLIPSeg, tokenize
from ..model_vocabulary import CLOSED
from .batches import Batch, TrainingVocabulary
from .losses import LossConfig, Losses, partclipseg_losses

RELEASED_TRAINABLE = ("visual_adapter.", "clip.token_embedding.", "clip.positional_embedding", "decoder.")
FROZEN_ALWAYS = ("non_object_embedding", "clip.visual.positional_embedding")
TEXT_EMBEDDINGS = ("clip.token_embedding.", "clip.positional_embedding")
LAST = "last.pth"
TOWERS = ("none", "vision", "all")


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = TRAIN_ITERATIONS
    batch_size: int = TRAIN_BATCH
    lr: float = TRAIN_LR
    weight_decay: float = TRAIN_WEIGHT_DECAY
    poly_power: float = TRAIN_POLY_POWER
    clip_norm: float = TRAIN_CLIP_NORM
    seed: int = TRAIN_SEED
    checkpoint_period: int = TRAIN_CHECKPOINT_PERIOD
    log_period: int = 10
    flip: bool = True
    towers: str = "none"  # also train these CLIP towers: "none" (as released), "vision" or "all"
    freeze_text: bool = False  # keep the text token and position embeddings frozen (fixed prompt codes)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("iterations and batch size must be at least 1")
        if self.towers not in TOWERS:
            raise ValueError(f"towers must be one of {TOWERS}, got {self.towers!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        values = dict(data)
        values["loss"] = LossConfig(**values.get("loss", {}))
        return cls(**values)


def init_part_branch(model: PartCLIPSeg) -> None:
    """Start the part branch from the CLIPSeg head and FiLM (as the release does at train start)."""
    decoder = model.decoder
    decoder.part_obj_with_cond_embed.load_state_dict(decoder.transposed_convolution.state_dict())
    decoder.cond_film_add.load_state_dict(decoder.film_add.state_dict())
    decoder.cond_film_mul.load_state_dict(decoder.film_mul.state_dict())


@torch.no_grad()
def match_background_scale(model: PartCLIPSeg, prompts: Sequence[str]) -> None:
    """From scratch only: give the (frozen) background embedding the mean norm of the prompts' text features.

    The released draw N(0, 512^-0.5) suits CLIP's features; next to a random tiny text tower's (about 20x
    larger) it leaves the background row almost unconditioned, and it barely learns."""
    features = model.encode_text(tokenize(list(prompts), model.config.context_length))
    model.non_object_embedding.mul_(features.norm(dim=-1).mean() / model.non_object_embedding.norm())


def part_model_from_clipseg(clipseg: PartCLIPSeg, seed: int = TRAIN_SEED) -> PartCLIPSeg:
    """A PartCLIPSeg with a CLIPSeg model's weights; adapter, pair MLP/projection and background embedding new."""
    if clipseg.config.is_part_model:
        raise ValueError("already a PartCLIPSeg model")
    torch.manual_seed(seed)
    model = PartCLIPSeg(type(clipseg.config).from_dict({**clipseg.config.to_dict(), "arch": "partclipseg"}))
    missing, unexpected = model.load_state_dict(clipseg.state_dict(), strict=False)
    own = ("visual_adapter.", "non_object_embedding", "decoder.cond_film", "decoder.reduce_cond_embed",
           "decoder.part_obj")
    if unexpected or any(not k.startswith(own) for k in missing):
        raise CheckpointError(f"cannot turn this CLIPSeg model into PartCLIPSeg: missing {missing}, unexpected {unexpected}")
    model.set_source_positions(clipseg.source_positions)
    model.vocabulary = clipseg.vocabulary
    init_part_branch(model)
    return model


def trainable_names(model: PartCLIPSeg, towers: str = "none", freeze_text: bool = False) -> list[str]:
    """Names of the parameters trained: the released set, plus the vision tower or every CLIP weight;
    ``freeze_text`` takes the text token and position embeddings out of the released set."""
    if freeze_text and towers == "all":
        raise ValueError("freeze_text contradicts towers='all' (which trains the text tower)")
    extra = {"none": (), "vision": ("clip.visual.",), "all": ("clip.",)}[towers]
    frozen = FROZEN_ALWAYS + (TEXT_EMBEDDINGS if freeze_text else ())
    return [name for name, _ in model.named_parameters()
            if not name.startswith(frozen) and name.startswith(RELEASED_TRAINABLE + extra)]


def parameter_groups(model: PartCLIPSeg, names: list[str], weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay for norm layers and embeddings (detectron2 WEIGHT_DECAY_NORM/EMBED = 0)."""
    no_decay: set[str] = set()
    for module_name, module in model.named_modules():
        if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.Embedding)) or "norm" in type(module).__name__.lower():
            no_decay.update(f"{module_name}.{n}" if module_name else n for n, _ in module.named_parameters(recurse=False))
    no_decay.update({"clip.positional_embedding", "clip.visual.class_embedding"})
    params = dict(model.named_parameters())
    decay = [params[n] for n in names if n not in no_decay]
    plain = [params[n] for n in names if n in no_decay]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


@dataclass
class TrainResult:
    iterations: int
    seconds: float
    first_loss: float
    last_loss: float  # mean total loss over the last log period
    checkpoint: Path


class Trainer:
    """Trains a PartCLIPSeg model on one dataset split; writes ``last.pth`` (and ``log.jsonl``) under ``out``."""

    def __init__(
        self, model: PartCLIPSeg, dataset: PartDataset, config: TrainConfig, out: str | Path, device: str = "cpu"
    ) -> None:
        if not model.config.is_part_model:
            raise ValueError("the trainer trains PartCLIPSeg models; convert CLIPSeg with part_model_from_clipseg()")
        if len(dataset) == 0:
            raise ValueError(f"{dataset.describe()}: no images to train on")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU; use --device cpu")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.dataset = dataset
        self.config = config
        self.out = Path(out)
        self.vocabulary = TrainingVocabulary(dataset.classes)
        model.trained_classes = self.vocabulary.plan.queries  # save_official writes them; plans anchor to them
        # what it starts from decides (docs/model.md, "Open and closed vocabulary"): fine-tuning open weights keeps
        # the CLIP text tower's vocabulary; weights without a stated one (random: from scratch) learn only these
        model.vocabulary = model.vocabulary or CLOSED
        self.names = trainable_names(model, config.towers, config.freeze_text)
        for name, param in model.named_parameters():
            param.requires_grad_(name in self.names)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(parameter_groups(model, self.names, config.weight_decay), lr=config.lr)
        power, total = config.poly_power, config.iterations
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: max(0.0, 1.0 - it / total) ** power
        )
        self.iteration = 0
        self._tokens = tokenize(list(self.vocabulary.plan.prompts), model.config.context_length).to(self.device)

    @classmethod
    def resume(
        cls, out: str | Path, dataset: PartDataset, iterations: int | None = None, device: str = "cpu"
    ) -> "Trainer":
        """Continue the run whose ``last.pth`` is in ``out`` (its saved settings; ``iterations`` may extend it)."""
        path = Path(out) / LAST
        state = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
        if not state or "optimizer" not in state or "trainer" not in state:
            raise CheckpointError(f"{path}: no resumable training checkpoint (written by 'partclipseg train')")
        config = TrainConfig.from_dict(state["trainer"])
        if iterations is not None and iterations != config.iterations:
            config = TrainConfig.from_dict({**config.to_dict(), "iterations": iterations})
        trainer = cls(load_checkpoint(path), dataset, config, out, device)
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.scheduler.load_state_dict(state["scheduler"])
        trainer.iteration = int(state["iteration"])
        return trainer

    def batch(self, iteration: int) -> Batch:
        """The batch of ``iteration``: drawn from (seed, iteration) only."""
        rng = np.random.default_rng([self.config.seed, iteration])
        size = len(self.dataset)
        indices = rng.choice(size, self.config.batch_size, replace=size < self.config.batch_size)
        flips = (rng.random(self.config.batch_size) < 0.5) & self.config.flip
        samples = [self.dataset[int(i)] for i in indices]
        return self.vocabulary.batch(samples, flips.tolist(), self.model.config.image_size)

    def step(self, batch: Batch) -> Losses:
        """One optimisation step."""
        model, plan = self.model, self.vocabulary.plan
        query = model.condition(model.encode_text(self._tokens), plan)
        features = model.encode_image(batch.pixels.to(self.device))
        last = len(model.decoder.layers) - 1
        out = model.decode(features, query, need_attentions=self.config.loss.uses_attention, attention_layers=(last,))
        parts, objects = batch.parts.to(self.device), batch.objects.to(self.device)
        losses = partclipseg_losses(out, parts, objects, plan, self.config.loss)
        self.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.config.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        return losses

    def save(self, path: Path | None = None) -> Path:
        return save_official(
            self.model, path or self.out / LAST, iteration=self.iteration, optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(), trainer=self.config.to_dict(),
        )

    def run(self, progress: bool = True, on_log: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
        """Train up to ``config.iterations``, saving every ``checkpoint_period`` and at the end."""
        from tqdm import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        self.model.train()
        start = time.perf_counter()
        first = None
        window: list[float] = []
        bar = tqdm(total=self.config.iterations, initial=self.iteration, disable=not progress, unit="it",
                   dynamic_ncols=True)
        with open(self.out / "log.jsonl", "a") as log:
            while self.iteration < self.config.iterations:
                losses = self.step(self.batch(self.iteration))
                self.iteration += 1
                values = losses.values()
                first = values["total"] if first is None else first
                window.append(values["total"])
                bar.update(1)
                bar.set_postfix(loss=f"{values['total']:.4f}")
                if self.iteration % self.config.log_period == 0 or self.iteration == self.config.iterations:
                    record = {"iteration": self.iteration, "lr": self.scheduler.get_last_lr()[0],
                              "seconds": round(time.perf_counter() - start, 2), "loss": float(np.mean(window)),
                              **{k: round(v, 6) for k, v in values.items()}}
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    if on_log:
                        on_log(record)
                    if self.iteration < self.config.iterations:
                        window = []
                if self.iteration % self.config.checkpoint_period == 0:
                    self.save()
        bar.close()
        self.model.eval()
        path = self.save()
        return TrainResult(self.iteration, time.perf_counter() - start, first or 0.0,
                           float(np.mean(window)) if window else 0.0, path)


def export_weights(model: PartCLIPSeg, path: str | Path, half: bool = True, **extra: Any) -> Path:
    """Weights only (no optimizer), optionally fp16 (the loader casts back to fp32): for shipping a model."""
    return save_official(model, path, dtype=torch.float16 if half else None, **extra)
