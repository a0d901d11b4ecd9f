"""``partclipseg segment``: segment images (or the bundled samples) and write labels, overlay and result.json."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from ..data.samples import SAMPLES, load_sample
from ..defaults import MIN_PIXELS, MODES, SCORE_THRESHOLD
from ..errors import QueryError
from ..overlay import overlay
from .options import add_model_arguments, segmenter


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
    seg, description = segmenter(args, mode=args.mode, score_threshold=args.score_threshold,
                                 min_pixels=args.min_pixels)
    random = args.random_weights is not None
    out_root = Path(args.out)
    for name, image, order, default_queries in inputs:
        queries = seg.set_queries(args.query or default_queries)
        result = seg.segment(image, color_order=order, objects=args.objects)
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
            "backend": seg.backend.describe(),
            "backend_choice": seg.backend.selection or "as configured",
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


def add_parser(sub: argparse._SubParsersAction) -> None:
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
