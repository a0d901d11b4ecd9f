"""``partclipseg bench`` (frame time against the number of queries, HF CLIPSeg in the same run) and
``partclipseg bench-backends`` (every backend variant's parity and time against torch fp32 on the CPU)."""
from __future__ import annotations

import argparse
import json
import sys

import torch

from ..benchmark.backends import DEFAULT_VARIANTS, GOAL_MS, PARITY_TOLERANCE, Variant, run_variants
from ..benchmark.common import FRAME_SIZE, format_table
from ..benchmark.core import measure
from ..defaults import INPUT_SIZE, MAX_QUERIES
from ..factory import RANDOM_SIZES, open_model
from .options import add_backend_arguments, backend_options


def cmd_bench(args: argparse.Namespace) -> int:
    rows = measure(args.size, args.queries, args.repeats, not args.no_hf)
    if args.json:
        print(json.dumps({"size": args.size, "threads": torch.get_num_threads(), "rows": rows}, indent=2))
    else:
        print(f"partclipseg bench: {args.size} model, random weights, {INPUT_SIZE}x{INPUT_SIZE} image, "
              f"batch 1, {torch.get_num_threads()} CPU threads, median of {args.repeats} (HF: {max(1, args.repeats // 2)})")
        print(format_table(rows))
    return 0


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="per-frame time vs number of queries, against HF CLIPSeg")
    bench.add_argument("--queries", type=int, nargs="+", default=[1, 4, 8, 16])
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("--size", choices=RANDOM_SIZES, default="full")
    bench.add_argument("--no-hf", action="store_true", help="skip the HF transformers CLIPSeg baseline")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
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
    parser.add_argument("--queries", type=int, nargs="+", default=[1, 8, MAX_QUERIES])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", choices=RANDOM_SIZES, default="full", help="random weights of this size")
    parser.add_argument("--skip-parity", action="store_true")
    parser.set_defaults(func=cmd_bench_backends)
