"""``partclipseg export`` (the ONNX graphs, validated, with an ONNX Runtime parity check) and
``partclipseg build-engine`` (the TensorRT engines for this GPU); docs/deployment.md."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..backends import BackendOptions
from ..backends.engine_cache import engine_path
from ..backends.ort_backend import OnnxRuntimeBackend
from ..benchmark.backends import parity, reference
from ..benchmark.common import BENCH_QUERIES, format_table, frame
from ..defaults import MAX_QUERIES, ONNX_OPSET
from ..factory import open_backend, open_model
from ..onnx.export import GRAPH_PRECISIONS, STAGES, export_graphs
from ..segmenter import Segmenter
from .options import add_backend_arguments, add_weights_arguments, backend_options, weights


def cmd_export(args: argparse.Namespace) -> int:
    model, description = open_model(args.checkpoint, args.random_weights, trust=args.trust_checkpoint)
    graphs = export_graphs(model, Path(args.out), tuple(args.precision), args.max_queries, args.opset)
    for precision, exported in graphs.items():
        for stage in STAGES:
            path = exported.path(stage)
            print(f"{precision} {stage}: {path} ({path.stat().st_size / 2**20:.0f} MiB, sha256 {exported.sha256[stage][:12]})")
    print(f"checked: ONNX checker (full), explicit dims, constant folding, TensorRT 10 operators (not for the ONNX "
          f"Runtime-only int8 graphs); weights: {description}")
    if args.skip_parity:
        return 0
    image = frame()
    ref = reference(model, image, sorted({1, min(args.max_queries, len(BENCH_QUERIES))}))
    rows = []
    for precision, exported in graphs.items():
        backend = OnnxRuntimeBackend(model, BackendOptions(precision=precision), graphs=exported)
        rows += [{"precision": precision} | row for row in parity(Segmenter(model, backend), precision, ref, image)]
    print("ONNX Runtime (CPU) vs torch fp32:")
    print(format_table(rows))
    failed = sorted({r["precision"] for r in rows if not r["ok"]})
    if failed:
        print(f"error: ONNX Runtime does not match torch within the {', '.join(failed)} tolerance", file=sys.stderr)
        return 1
    return 0


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export the image-encoder and decoder ONNX graphs and validate them")
    add_weights_arguments(parser)
    parser.add_argument("--out", default="onnx", help="output folder (one sub-folder per precision)")
    parser.add_argument("--precision", nargs="+", choices=GRAPH_PRECISIONS, default=["fp32"],
                        help="fp16: fp16 weights/activations, LayerNorm/Softmax in fp32, fp32 inputs and outputs; "
                             "int8: int8 MatMul weights for ONNX Runtime on the CPU (docs/deployment.md)")
    parser.add_argument("--max-queries", type=int, default=MAX_QUERIES, help="Qmax: bounds the dynamic row dims")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, choices=(17, 18), help="ONNX opset")
    parser.add_argument("--skip-parity", action="store_true", help="skip the ONNX Runtime vs torch check")
    parser.set_defaults(func=cmd_export)


def cmd_build_engine(args: argparse.Namespace) -> int:
    _, backend, description = open_backend(weights(args), "tensorrt", backend_options(args))
    for stage in backend.engines:
        print(engine_path(backend.folder, stage, args.precision))
    print(f"{backend.describe()}; weights: {description}")
    return 0


def add_build_engine_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("build-engine", help="export (cached) and build the TensorRT engines for this GPU")
    group = add_weights_arguments(parser)
    add_backend_arguments(group, only=("device", "precision", "max_queries", "cache_dir", "engine_dir",
                                       "rebuild_engines", "workspace_mib"),
                          defaults={"device": "cuda", "precision": "fp16"})
    parser.set_defaults(func=cmd_build_engine)
