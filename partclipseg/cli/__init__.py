"""The ``partclipseg`` command line: one module per command group, all built on the library (which never imports
this package)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from ..errors import EXPECTED_ERRORS


def log_progress() -> None:
    """Show this package's progress logs (exports, engine builds) on stderr."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("partclipseg").setLevel(logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per job."""
    from . import bench, deploy, segment, train

    parser = argparse.ArgumentParser(prog="partclipseg", description="Open-vocabulary part segmentation (PartCLIPSeg).")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (segment.add_parser, bench.add_bench_parser, deploy.add_export_parser,
                     deploy.add_build_engine_parser, bench.add_bench_backends_parser, train.add_train_parser,
                     train.add_eval_parser, train.add_synth_parser):
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
