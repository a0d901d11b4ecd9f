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


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (unless the help text says it, or there is none to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, "", [], argparse.SUPPRESS)
                or not (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{text} (default: {shown})"


def with_defaults(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` and its sub-commands with :class:`DefaultsFormatter`."""
    parser.formatter_class = DefaultsFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                with_defaults(sub)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per job."""
    from . import bench, deploy, segment, train

    parser = argparse.ArgumentParser(prog="partclipseg", description="Open-vocabulary part segmentation (PartCLIPSeg).")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (segment.add_parser, bench.add_bench_parser, deploy.add_export_parser,
                     deploy.add_build_engine_parser, bench.add_bench_backends_parser, train.add_train_parser,
                     train.add_eval_parser, train.add_synth_parser):
        register(sub)
    return with_defaults(parser)


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
