"""``partclipseg segment``: segment images (or the bundled samples) and write labels, overlay and result.json."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from ..affordances import load_affordances
from ..data.samples import SAMPLES, load_sample
from ..defaults import MIN_PIXELS, MIN_PIXELS_RANGE, MODES, SCORE_THRESHOLD, SCORE_THRESHOLD_RANGE
from ..errors import QueryError
from ..model_vocabulary import unknown_warning
from ..overlay import RANDOM_BANNER, UNKNOWN_MARK, legend_lines, overlay
from ..queries import parse_objects
from .options import add_model_arguments, bounded, segmenter


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
    objects = parse_objects(args.objects) if args.objects else []
    if args.mode == "oracle" and not objects:
        raise ValueError("--mode oracle needs --objects (the objects present in the image, e.g. --objects 'pot; knife')")
    inputs = _inputs(args)
    if args.images and not args.query:
        raise QueryError("give at least one --query, e.g. --query 'pot/handle'")
    if args.mode == "oracle":
        warn(f"oracle mode has no background: every pixel is given to a queried part of {', '.join(objects)} "
             "(as the official Oracle-Obj protocol); --score-threshold leaves low-probability pixels unlabelled")
    elif objects:
        warn(f"--objects is read only with --mode oracle: {', '.join(objects)} ignored in mode {args.mode}")
    affordances = load_affordances(args.affordances_file)
    seg, description = segmenter(args, mode=args.mode, score_threshold=args.score_threshold,
                                 min_pixels=args.min_pixels, affordances=affordances)
    model = seg.model
    random = args.random_weights is not None
    out_root = Path(args.out)
    warned: set[tuple[str, ...]] = set()
    for name, image, order, default_queries in inputs:
        queries = seg.set_queries(args.query or default_queries)
        unknown = seg.unknown_queries
        if unknown and tuple(q.name for q in queries) not in warned:  # once per query set
            warned.add(tuple(q.name for q in queries))
            warn(f"{unknown_warning(unknown, model.trained_classes)}; they are marked in result.json and the overlay")
        result = seg.segment(image, color_order=order, objects=objects or None)
        out = out_root / name if len(inputs) > 1 else out_root
        out.mkdir(parents=True, exist_ok=True)
        rgb = image[:, :, ::-1] if order == "bgr" else image
        banner = RANDOM_BANNER if random else None
        cv2.imwrite(str(out / "labels.png"), result.labels)
        cv2.imwrite(str(out / "overlay.png"), overlay(rgb, result.labels, legend_lines(result.parts),
                                                      banner=banner)[:, :, ::-1])
        summary = {
            "image": name,
            "weights": description,
            "random_weights": random,
            "vocabulary": model.vocabulary or "not stated",
            "backend": seg.backend.name,
            "device": str(seg.backend.device),
            "precision": seg.backend.precision,
            "runs_on": seg.backend.describe(),
            "backend_choice": seg.backend.selection or "as configured",
            "mode": args.mode,
            "objects": objects,
            "queries": [q.name for q in queries],
            "unknown_queries": [q.name for q in unknown],
            "labels": "labels.png: 0 = nothing, i + 1 = queries[i]",
            "parts": [
                {"query": p.query.name, "object": p.query.object, "part": p.query.part,
                 "affordance": p.query.affordance, "unknown_query": p.unknown_query, "label": p.label,
                 "score": round(p.score, 4), "pixel_count": p.pixel_count, "roi_xywh": list(p.roi)}
                for p in result.parts
            ],
            "timings_ms": {k: round(v, 2) for k, v in result.timings.items()},
        }
        (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
        found = ", ".join(f"{p.query.name}: {p.pixel_count} px" + (f" {UNKNOWN_MARK}" if p.unknown_query else "")
                          for p in result.parts)
        total = sum(result.timings.values())
        print(f"{name}: {found} ({total:.0f} ms) -> {out}")
    if random:
        warn(description)
    return 0


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def add_parser(sub: argparse._SubParsersAction) -> None:
    seg = sub.add_parser("segment", help="segment images (or the bundled samples) and write labels/overlay/result.json")
    seg.add_argument("images", nargs="*", help="image files; without any, the bundled sample photos")
    seg.add_argument("--sample", action="append", choices=list(SAMPLES), help="bundled sample(s) to segment")
    seg.add_argument("--query", action="append",
                     help="part query, e.g. 'pot/handle', 'knife handle', 'grasp:knife' (repeatable; ';' separates "
                          "too; README, 'Queries'); default: the samples' own")
    seg.add_argument("--affordances-file",
                     help="affordance vocabulary YAML for requests such as 'grasp:knife' (default: the bundled one)")
    seg.add_argument("--mode", choices=MODES, default="pred-all",
                     help="pred-all: the objects are predicted; oracle: given by --objects (no background)")
    seg.add_argument("--objects", nargs="+", help="objects present, for --mode oracle ('pot; knife' or pot knife)")
    low, high = SCORE_THRESHOLD_RANGE
    seg.add_argument("--score-threshold", type=bounded(float, low, high), default=SCORE_THRESHOLD,
                     help=f"pixels below this probability are labelled 0 ({low:g}..{high:g}; 0 = official argmax)")
    low, high = MIN_PIXELS_RANGE
    seg.add_argument("--min-pixels", type=bounded(int, low, high), default=MIN_PIXELS,
                     help=f"parts with fewer pixels are dropped ({low}..{high})")
    seg.add_argument("--out", default="out", help="output folder")
    add_model_arguments(seg)
    seg.set_defaults(func=cmd_segment)
