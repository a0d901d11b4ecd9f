"""``partclipseg`` command line: segment images, benchmark."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .backends import BACKENDS, PRECISIONS, BackendUnavailable, make_backend
from .checkpoint import RANDOM_SIZES, CheckpointError, open_model
from .defaults import MIN_PIXELS, MODES, SCORE_THRESHOLD
from .drawing import overlay
from .preprocess import ImageError
from .queries import QueryError
from .samples import SAMPLES, load_sample
from .segmenter import Segmenter

EXPECTED_ERRORS = (CheckpointError, QueryError, ImageError, BackendUnavailable, FileNotFoundError, ValueError)


def log_progress() -> None:
    """Show this package's progress logs (exports, engine builds) on stderr."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("partclipseg").setLevel(logging.INFO)


def add_weights_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Which weights to load (every command that needs a model)."""
    group = parser.add_argument_group("model")
    group.add_argument("--checkpoint", help="official PartCLIPSeg .pth or HF CLIPSeg weights (never downloaded)")
    group.add_argument("--random-weights", choices=RANDOM_SIZES,
                       help="run random weights of this size instead of a checkpoint (outputs are marked)")
    group.add_argument("--trust-checkpoint", action="store_true",
                       help="allow full unpickling of checkpoints that hold more than tensors (trusted files only)")
    return group


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every command that runs the model shares: weights and backend (docs/deployment.md)."""
    group = add_weights_arguments(parser)
    group.add_argument("--backend", default="torch", choices=BACKENDS)
    group.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    group.add_argument("--precision", default="fp32", choices=PRECISIONS)
    group.add_argument("--cache-dir", help="onnxruntime/tensorrt: exported graphs and engines "
                                           "(default $PARTCLIPSEG_CACHE or ~/.cache/partclipseg)")
    group.add_argument("--torch-compile", action="store_true", help="torch: torch.compile the per-frame stages")
    group.add_argument("--cuda-graphs", action="store_true", help="torch on CUDA: replay captured CUDA graphs")


def build_segmenter(args: argparse.Namespace, **kwargs) -> tuple[Segmenter, str]:
    model, description = open_model(args.checkpoint, args.random_weights, trust=args.trust_checkpoint)
    backend = make_backend(args.backend, model, args.device, args.precision, cache_dir=args.cache_dir,
                           torch_compile=args.torch_compile, cuda_graphs=args.cuda_graphs)
    return Segmenter(model, backend, **kwargs), description


def _inputs(args: argparse.Namespace) -> list[tuple[str, np.ndarray, str, list[str] | None]]:
    """(name, image, colour order, default queries) for each input."""
    if args.images:
        items = []
        for path in args.images:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f"cannot read image {path!r} (missing or not an image file)")
            items.append((Path(path).stem, image, "bgr", None))
        return items
    names = args.sample or list(SAMPLES)
    return [(name, load_sample(name), "rgb", [SAMPLES[name].queries]) for name in names]


def cmd_segment(args: argparse.Namespace) -> int:
    if args.mode == "oracle" and not args.objects:
        raise ValueError("--mode oracle needs --objects (the objects present in the image)")
    inputs = _inputs(args)
    if args.images and not args.query:
        raise QueryError("give at least one --query, e.g. --query 'pot/handle'")
    segmenter, description = build_segmenter(
        args, mode=args.mode, score_threshold=args.score_threshold, min_pixels=args.min_pixels
    )
    random = args.random_weights is not None
    out_root = Path(args.out)
    for name, image, order, default_queries in inputs:
        queries = segmenter.set_queries(args.query or default_queries)
        result = segmenter.segment(image, color_order=order, objects=args.objects)
        out = out_root / name if len(inputs) > 1 else out_root
        out.mkdir(parents=True, exist_ok=True)
        rgb = image[:, :, ::-1] if order == "bgr" else image
        legend = [f"{p.query.name} {p.score:.2f}" for p in result.parts]
        banner = "RANDOM WEIGHTS - masks are meaningless" if random else None
        cv2.imwrite(str(out / "labels.png"), result.labels)
        cv2.imwrite(str(out / "overlay.png"), overlay(rgb, result.labels, legend, banner=banner)[:, :, ::-1])
        summary = {
            "image": name,
            "weights": description,
            "random_weights": random,
            "mode": args.mode,
            "queries": [q.name for q in queries],
            "labels": "labels.png: 0 = nothing, i + 1 = queries[i]",
            "parts": [
                {"query": p.query.name, "object": p.query.object, "part": p.query.part, "label": p.label,
                 "score": round(p.score, 4), "pixel_count": p.pixel_count, "roi_xywh": list(p.roi)}
                for p in result.parts
            ],
            "timings_ms": {k: round(v, 2) for k, v in result.timings.items()},
        }
        (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
        found = ", ".join(f"{p.query.name}: {p.pixel_count} px" for p in result.parts)
        total = sum(result.timings.values())
        print(f"{name}: {found} ({total:.0f} ms) -> {out}")
    if random:
        print(f"warning: {description}", file=sys.stderr)
    return 0


def add_segment_parser(sub: argparse._SubParsersAction) -> None:
    seg = sub.add_parser("segment", help="segment images (or the bundled samples) and write labels/overlay/result.json")
    seg.add_argument("images", nargs="*", help="image files; without any, the bundled sample photos")
    seg.add_argument("--sample", action="append", choices=list(SAMPLES), help="bundled sample(s) to segment")
    seg.add_argument("--query", action="append", help="part query, e.g. 'pot/handle' (repeatable; ';' separates too)")
    seg.add_argument("--mode", choices=MODES, default="pred-all")
    seg.add_argument("--objects", nargs="+", help="objects present (oracle mode)")
    seg.add_argument("--score-threshold", type=float, default=SCORE_THRESHOLD)
    seg.add_argument("--min-pixels", type=int, default=MIN_PIXELS)
    seg.add_argument("--out", default="out", help="output folder")
    add_model_arguments(seg)
    seg.set_defaults(func=cmd_segment)


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per job; each module that owns a job registers its own parser."""
    from . import backend_check, bench, evaluate, export
    from .backends import tensorrt_backend
    from .data import synth
    from .train import command as train

    parser = argparse.ArgumentParser(prog="partclipseg", description="Open-vocabulary part segmentation (PartCLIPSeg).")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (add_segment_parser, bench.add_parser, export.add_parser, tensorrt_backend.add_parser,
                     backend_check.add_parser, train.add_parser, evaluate.add_parser, synth.add_parser):
        register(sub)
    return parser


def run(argv: Sequence[str] | None, parser_factory: Callable[[], argparse.ArgumentParser]) -> int:
    """Parse, dispatch, and turn expected errors into one clear line and exit status 2."""
    args = parser_factory().parse_args(argv)
    try:
        return args.func(args)
    except EXPECTED_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    log_progress()
    return run(argv, build_parser)


if __name__ == "__main__":
    sys.exit(main())
