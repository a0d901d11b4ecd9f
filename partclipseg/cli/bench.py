"""``partclipseg bench`` (frame time and query changes per backend variant against the number of queries, HF
CLIPSeg in the same run, the goals, and with --quality what each precision costs) and ``partclipseg
bench-backends`` (every backend variant's parity and per-stage time against torch fp32 on the CPU)."""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from ..benchmark.backends import DEFAULT_VARIANTS, GOAL_MS, PARITY_TOLERANCE, Variant, run_variants
from ..benchmark.common import FRAME_SIZE, format_table
from ..backends import BackendOptions
from ..benchmark.core import DEFAULT_VARIANTS as BENCH_VARIANTS
from ..benchmark.core import measure, postprocess_rows
from ..benchmark.quality import quality_rows
from ..defaults import AUTO, MAX_QUERIES
from ..factory import RANDOM_SIZES, open_model
from .options import add_backend_arguments, backend_options


GOALS = {  # issue 15, on the 2-core development machine: full ViT-B/16, 640x480, Q = 8, same run
    "frame_ms": 200.0, "speedup_vs_hf": 25.0, "q16_over_q1": 1.3, "postprocess_ms_q16": 10.0,
    "first_answer_ms": 250.0,
}


def parse_resolution(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 16 or int(height) < 16:
        raise argparse.ArgumentTypeError(f"resolution must be WIDTHxHEIGHT, e.g. 640x480, got {text!r}")
    return int(width), int(height)


def goals(rows: list[dict], post: list[dict], default: str) -> list[dict]:
    """The goals, met or not, from the default variant's rows (auto if measured, else the first variant)."""
    mine = {r["queries"]: r for r in rows if r["variant"] == default}
    trained = {r["queries"]: r["trained_postprocess_ms"] for r in post}
    found = []

    def goal(name: str, value: float | None, limit: float, smaller: bool = True, unit: str = "ms") -> None:
        if value is not None:
            met = value <= limit if smaller else value >= limit
            found.append({"goal": name, "value": round(value, 2), "limit": f"{'<=' if smaller else '>='} {limit:g}"
                          f"{' ' + unit if unit else ''}", "met": met})

    q8, q1, q16 = mine.get(8), mine.get(1), mine.get(16)
    goal(f"{default} frame, Q=8", q8 and q8["frame_ms"], GOALS["frame_ms"])
    goal(f"{default} speed-up vs HF CLIPSeg, Q=8", q8 and q8.get("speedup_vs_hf"), GOALS["speedup_vs_hf"], False, "x")
    goal(f"{default} t(Q=16) / t(Q=1)", q1 and q16 and q16["frame_ms"] / q1["frame_ms"], GOALS["q16_over_q1"],
         unit="")
    goal("post-processing, trained logits, Q=16", trained.get(16), GOALS["postprocess_ms_q16"])
    goal(f"{default} query change -> first answer, Q=8", q8 and q8["first_answer_ms"], GOALS["first_answer_ms"])
    return found


def cmd_bench(args: argparse.Namespace) -> int:
    variants = [Variant.parse(v) for v in args.variants]
    options = BackendOptions(device="cpu", cache_dir=args.cache_dir)
    rows, skipped = measure(args.size, args.queries, args.repeats, variants, args.resolution, options, not args.no_hf)
    post = postprocess_rows(args.resolution, args.queries, args.repeats)
    default = AUTO if AUTO in args.variants else str(variants[0])
    found = goals(rows, post, default)
    quality, quality_skipped = quality_rows(variants, options, args.val, args.val_limit) if args.quality else ([], [])
    width, height = args.resolution
    header = (f"partclipseg bench: {args.size} model, random weights, {width}x{height} frame, batch 1, "
              f"{torch.get_num_threads()} CPU threads, median of {args.repeats} (HF: {max(1, args.repeats // 2)}); "
              f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        print(json.dumps({"size": args.size, "resolution": f"{width}x{height}", "threads": torch.get_num_threads(),
                          "load_average": os.getloadavg(), "rows": rows, "postprocess": post, "goals": found,
                          "quality": quality, "skipped": skipped + quality_skipped}, indent=2))
        return 0
    print(header)
    for line in skipped + quality_skipped:
        print(line)
    print(format_table(rows))
    print("\npost-processing on the bundled (trained) model's logits of the same frame (ms)")
    print(format_table(post))
    if found:
        print("\ngoals")
        print(format_table(found))
    if quality:
        print("\nquality against torch fp32 (bundled model; logits error: official-layout tiny checkpoint)")
        print(format_table(quality))
    return 0


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="frame time and query changes per backend variant vs number of queries, "
                                         "against HF CLIPSeg; --quality: what each precision costs")
    bench.add_argument("--variants", nargs="+", default=list(BENCH_VARIANTS),
                       help="auto or backend/precision, e.g. torch/fp32 onnxruntime/int8 (default: %(default)s)")
    bench.add_argument("--resolution", type=parse_resolution, default=(FRAME_SIZE[1], FRAME_SIZE[0]),
                       help="input frame WIDTHxHEIGHT (default 640x480, the node's usual camera)")
    bench.add_argument("--queries", type=int, nargs="+", default=[1, 8, 16], help="query counts to measure")
    bench.add_argument("--repeats", type=int, default=5, help="frames per count (the median is reported)")
    bench.add_argument("--size", choices=RANDOM_SIZES, default="full", help="random weights of this size")
    bench.add_argument("--no-hf", action="store_true", help="skip the HF transformers CLIPSeg baseline")
    bench.add_argument("--quality", action="store_true", help="also measure each variant's quality against fp32")
    bench.add_argument("--val", help="--quality: held-out dataset for the bundled model's mIoU (docs/training.md)")
    bench.add_argument("--val-limit", type=int, help="--quality: only the first N held-out images")
    bench.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_backend_arguments(bench, only=("cache_dir",))
    bench.set_defaults(func=cmd_bench)


def cmd_bench_backends(args: argparse.Namespace) -> int:
    variants = [Variant.parse(v) for v in args.variants or DEFAULT_VARIANTS[torch.device(args.device).type]]
    model, description = open_model(None, random_weights=args.size)
    torch.manual_seed(0)
    parity_rows, timing_rows, skipped = run_variants(
        model, variants, backend_options(args), args.queries, args.repeats, not args.skip_parity)
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"partclipseg bench-backends: {description}; {FRAME_SIZE[1]}x{FRAME_SIZE[0]} frame; {device_name}; "
          f"median of {args.repeats}; reference torch fp32 CPU")
    for line in skipped:
        print(line)
    if parity_rows:
        print("\nparity (relative to the largest reference magnitude; tolerance "
              + ", ".join(f"{p} {t:g}" for p, t in PARITY_TOLERANCE.items()) + ")")
        print(format_table(parity_rows))
    if timing_rows:
        print("\ntime per frame (ms)")
        print(format_table(timing_rows))
    goal = [r for r in timing_rows if r["variant"].startswith("torch/fp16") and r["queries"] == 8]
    if goal and args.device.startswith("cuda"):
        best = min(r["enc+dec_ms"] for r in goal)
        verdict = "met" if best <= GOAL_MS else "not met"
        print(f"\ngoal (H100-class GPU): torch fp16, Q=8, encoder + decoder <= {GOAL_MS:g} ms: {best:.2f} ms, {verdict}")
    failed = [r for r in parity_rows if not r["ok"]]
    if failed:
        print(f"\nPARITY FAILED for {sorted({r['variant'] for r in failed})}", file=sys.stderr)
        return 1
    return 0


def add_bench_backends_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench-backends", help="parity and per-stage time of every backend vs torch fp32 CPU")
    add_backend_arguments(parser, only=("device", "cache_dir"), defaults={"device": "cpu"})
    parser.add_argument("--variants", nargs="+", help="backend/precision[+graphs][+compile] (default: all for the "
                                                      "device; unavailable ones are skipped with the reason)")
    parser.add_argument("--queries", type=int, nargs="+", default=[1, 8, MAX_QUERIES], help="query counts to measure")
    parser.add_argument("--repeats", type=int, default=10, help="frames per variant and count (median reported)")
    parser.add_argument("--size", choices=RANDOM_SIZES, default="full", help="random weights of this size")
    parser.add_argument("--skip-parity", action="store_true", help="time only, no parity check against torch fp32")
    parser.set_defaults(func=cmd_bench_backends)
