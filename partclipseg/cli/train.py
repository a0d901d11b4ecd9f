"""``partclipseg train`` (train or fine-tune on a part dataset), ``partclipseg eval`` (the paper's protocols and part
reports) and ``partclipseg synth`` (the synthetic kitchen dataset); docs/training.md."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import torch

from ..checkpoint import load_checkpoint
from ..data import LAYOUTS, open_dataset
from ..data.synth import KITCHEN_PARTS, SceneConfig, generate
from ..defaults import (LOSS_BACKGROUND_WEIGHT, LOSS_OBJECT_WEIGHT, MODES, SEPARATION_MODES, TRAIN_BATCH,
                        TRAIN_CHECKPOINT_PERIOD, TRAIN_CLIP_NORM, TRAIN_ITERATIONS, TRAIN_LR, TRAIN_SEED,
                        TRAIN_WEIGHT_DECAY)
from ..errors import CheckpointError
from ..evaluate import evaluate
from ..model import ModelConfig, PartCLIPSeg, tiny_config
from ..train.batches import TrainingVocabulary
from ..train.losses import LossConfig
from ..train.trainer import (LAST, TOWERS, TrainConfig, Trainer, export_weights, init_part_branch,
                             match_background_scale, part_model_from_clipseg)
from .options import add_model_arguments, segmenter

RANDOM_INITS = ("tiny", "full")


def _size_overrides(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not value.isdigit():
            raise ValueError(f"--size takes field=integer (e.g. vision_width=96), got {item!r}")
        out[key] = int(value)
    return out


def starting_model(args: argparse.Namespace, prompts: Sequence[str]) -> PartCLIPSeg:
    """The model a new run starts from: a checkpoint (PartCLIPSeg: fine-tune; CLIPSeg: converted, part branch
    copied from its head) or random weights of a named size (part branch copied from the random head, background
    embedding scaled to the ``prompts``' text features)."""
    if bool(args.init) == bool(args.random_init):
        raise CheckpointError("give the starting weights: --init CHECKPOINT, or --random-init tiny|full to train "
                              "from scratch (or --resume to continue a run)")
    if args.init:
        model = load_checkpoint(args.init, trust=args.trust_checkpoint)
        return model if model.config.is_part_model else part_model_from_clipseg(model, args.seed)
    overrides = _size_overrides(args.size or [])
    try:
        config = tiny_config(**overrides) if args.random_init == "tiny" else ModelConfig(**overrides)
    except TypeError as err:
        raise ValueError(f"--size: {err}") from err
    torch.manual_seed(args.seed)
    model = PartCLIPSeg(config)
    init_part_branch(model)
    match_background_scale(model, prompts)
    return model


def cmd_train(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = open_dataset(args.data, args.split, args.layout)
    out = Path(args.out)
    if args.resume:
        trainer = Trainer.resume(out, dataset, args.iterations, device=args.device)
        print(f"resuming {out / LAST} at iteration {trainer.iteration} of {trainer.config.iterations}")
    else:
        if (out / LAST).exists():
            raise ValueError(f"{out / LAST} exists: pass --resume to continue that run, or choose another --out")
        loss = LossConfig(separation=args.separation, background_weight=args.background_weight,
                          balance_objects=args.balance_objects, balance_parts=args.balance_parts,
                          object_weight=args.object_weight,
                          **({"separation_weight": 0.0, "enhancement_weight": 0.0} if args.no_attention_losses else {}))
        config = TrainConfig(
            iterations=args.iterations or TRAIN_ITERATIONS, batch_size=args.batch_size, lr=args.lr,
            weight_decay=args.weight_decay, seed=args.seed, checkpoint_period=args.checkpoint_period,
            flip=not args.no_flip, towers=args.train_towers, freeze_text=args.freeze_text, clip_norm=args.clip_norm,
            loss=loss,
        )
        prompts = TrainingVocabulary(dataset.classes).plan.prompts
        trainer = Trainer(starting_model(args, prompts), dataset, config, out, device=args.device)
    print(f"training on {dataset.describe()}: {len(trainer.vocabulary.plan.queries)} classes, "
          f"{sum(p.numel() for p in trainer.params) / 1e6:.2f} M trainable parameters -> {out}")
    result = trainer.run(progress=not args.quiet)
    print(f"{result.iterations} iterations in {result.seconds / 60:.1f} min: loss {result.first_loss:.4f} -> "
          f"{result.last_loss:.4f}; checkpoint {result.checkpoint}")
    if args.export:
        path = export_weights(trainer.model, args.export, half=not args.export_fp32, iteration=result.iterations)
        print(f"weights -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    (out / "summary.json").write_text(json.dumps({
        "iterations": result.iterations, "minutes": round(result.seconds / 60, 2), "first_loss": result.first_loss,
        "last_loss": result.last_loss, "dataset": dataset.describe(), "config": trainer.config.to_dict(),
    }, indent=2) + "\n")
    return 0


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train / fine-tune PartCLIPSeg on a part dataset (official-layout checkpoints)")
    p.add_argument("data", help="dataset folder (folder format, OV-PARTS Pascal-Part-116 or ADE20K-Part-234)")
    p.add_argument("--out", required=True, help="run folder: last.pth (resumable), log.jsonl, summary.json")
    p.add_argument("--split", default="train", help="split to train on")
    p.add_argument("--layout", default="auto", choices=LAYOUTS, help="dataset layout (auto: detected)")
    start = p.add_argument_group("starting weights (one of)")
    start.add_argument("--init", help="PartCLIPSeg checkpoint to fine-tune, or CLIPSeg weights to start from")
    start.add_argument("--random-init", choices=RANDOM_INITS, help="train from scratch at this size")
    start.add_argument("--resume", action="store_true", help="continue the run in --out (its saved settings)")
    start.add_argument("--size", nargs="+", metavar="FIELD=N",
                       help="with --random-init: model size overrides, e.g. vision_width=96 decoder_mlp=256")
    start.add_argument("--trust-checkpoint", action="store_true", help="allow full unpickling of --init")
    opt = p.add_argument_group("optimisation (defaults: the released configs)")
    opt.add_argument("--iterations", type=int, help=f"total iterations (default {TRAIN_ITERATIONS})")
    opt.add_argument("--batch-size", type=int, default=TRAIN_BATCH, help="images per step")
    opt.add_argument("--lr", type=float, default=TRAIN_LR, help="AdamW learning rate (poly schedule)")
    opt.add_argument("--weight-decay", type=float, default=TRAIN_WEIGHT_DECAY, help="AdamW weight decay")
    opt.add_argument("--seed", type=int, default=TRAIN_SEED, help="seed of the batches and flips")
    opt.add_argument("--checkpoint-period", type=int, default=TRAIN_CHECKPOINT_PERIOD,
                     help="iterations between resumable checkpoints (last.pth)")
    opt.add_argument("--separation", choices=SEPARATION_MODES, default="released",
                     help="L_sep as released (no gradient) or the differentiable surrogate")
    opt.add_argument("--no-attention-losses", action="store_true", help="drop L_sep and L_enh (faster)")
    opt.add_argument("--background-weight", type=float, default=LOSS_BACKGROUND_WEIGHT,
                     help="BCE weight of the background channels (the release: 0.05)")
    opt.add_argument("--object-weight", type=float, default=LOSS_OBJECT_WEIGHT,
                     help="weight of the object term L_obj (the release: OBJ_LAMBDA 1.0)")
    opt.add_argument("--balance-objects", action="store_true",
                     help="weigh each object class present in a batch equally in the object BCE term "
                          "(not in the release)")
    opt.add_argument("--balance-parts", action="store_true",
                     help="weigh each part class present in a batch equally in the two part BCE terms, so small "
                          "parts (handles, caps) count as much as bodies (not in the release)")
    opt.add_argument("--clip-norm", type=float, default=TRAIN_CLIP_NORM,
                     help="full-model gradient-norm clipping (the release: 0.01)")
    opt.add_argument("--train-towers", choices=TOWERS, default="none",
                     help="also train the CLIP vision tower, or both towers (not in the release; needed from scratch)")
    opt.add_argument("--freeze-text", action="store_true",
                     help="keep the text token and position embeddings frozen (from scratch: fixed prompt codes)")
    opt.add_argument("--no-flip", action="store_true", help="no horizontal flips")
    run = p.add_argument_group("run")
    run.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    run.add_argument("--threads", type=int, help="torch CPU threads")
    run.add_argument("--export", help="after training, write the weights alone (official layout) here")
    run.add_argument("--export-fp32", action="store_true", help="export fp32 instead of fp16")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def cmd_eval(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.data, args.split, args.layout)
    seg, description = segmenter(args, max_queries=len(dataset.classes.classes))
    report = evaluate(seg, dataset, args.protocol, args.limit, progress=not args.quiet)
    report.meta = {"weights": description, "backend": seg.backend.describe()}
    print(report.table())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"-> {args.json}")
    return 0


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="mIoU seen/unseen and h-IoU (Pred-All, Oracle-Obj) on a part dataset")
    p.add_argument("data", help="dataset folder (folder format, OV-PARTS Pascal-Part-116 or ADE20K-Part-234)")
    p.add_argument("--split", default="val", help="split to evaluate (ADE20K-Part-234 'test' = OV-PARTS test set)")
    p.add_argument("--layout", default="auto", choices=LAYOUTS, help="dataset layout (auto: detected)")
    p.add_argument("--protocol", nargs="+", default=list(MODES), choices=MODES, help="protocols to score")
    p.add_argument("--limit", type=int, help="evaluate only the first N images")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_arguments(p)
    p.set_defaults(func=cmd_eval)


def cmd_synth(args: argparse.Namespace) -> int:
    width, _, height = args.size.partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 32 or int(height) < 32:
        raise ValueError(f"--size must be WIDTHxHEIGHT (at least 32x32), got {args.size!r}")
    config = SceneConfig(int(width), int(height), max_objects=args.max_objects)
    classes = generate(args.out, args.train, args.val, args.seed, args.unseen, config, not args.quiet, args.objects)
    print(f"{args.train} train + {args.val} val images, {len(classes.classes)} classes -> {args.out}")
    return 0


def add_synth_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate the synthetic kitchen part dataset (images, part masks, depth, cameras)")
    p.add_argument("out", help="output folder (folder format, see docs/training.md)")
    p.add_argument("--train", type=int, default=2000, help="training images")
    p.add_argument("--val", type=int, default=200, help="held-out images")
    p.add_argument("--seed", type=int, default=0, help="seed of the scenes")
    p.add_argument("--size", default="320x240", help="image size WIDTHxHEIGHT")
    p.add_argument("--max-objects", type=int, default=SceneConfig.max_objects, help="kitchen objects per image, at most")
    p.add_argument("--objects", nargs="+", choices=list(KITCHEN_PARTS), help="only these objects (default: all)")
    p.add_argument("--unseen", nargs="*", default=[], help="objects to hold out of training (written to unseen.txt)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_synth)
