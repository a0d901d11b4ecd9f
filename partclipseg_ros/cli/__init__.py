"""``partclipseg-ros``: run the segment node (what the launch file does), the demo, the node benchmark.

Arguments after ``--ros-args`` go to ROS unchanged (``-p name:=value``, ``-r from:=to``, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from partclipseg.factory import RANDOM_SIZES
from partclipseg.cli import run, with_defaults
from partclipseg.queries import check_text

from ..environment import share_path, use_shm_profile


def ros_arguments(args: argparse.Namespace) -> list[str]:
    """The ``--ros-args`` list for the node: params file, then the option shortcuts, -p, -r and raw ROS args."""
    if args.queries is not None:
        check_text(args.queries)  # ROS would cut a NUL short silently
    out = ["--ros-args", "--params-file", str(args.params_file or share_path("config", "segment.yaml"))]
    overrides = {"queries": args.queries}
    if args.checkpoint is not None:
        overrides.update(checkpoint=args.checkpoint, random_weights="")
    if args.random_weights is not None:
        overrides.update(random_weights=args.random_weights, checkpoint="")
    for name, value in overrides.items():
        if value is not None:
            out += ["-p", f"{name}:={json.dumps(value)}"]
    for param in args.param:
        out += ["-p", param]
    for remap in args.remap:
        out += ["-r", remap]
    return out + list(args.ros_args)


def cmd_segment(args: argparse.Namespace) -> int:
    import rclpy

    from ..segment_node import SegmentNode, run as run_node

    use_shm_profile()
    rclpy.init(args=["partclipseg-ros", *ros_arguments(args)])
    return run_node(SegmentNode(args.name), autostart=not args.no_autostart)


def add_segment_parser(sub: argparse._SubParsersAction) -> None:
    seg = sub.add_parser("segment", help="run the segment node, configured and active (= launch/segment.launch.py)")
    seg.add_argument("--params-file", help="parameters YAML (default: config/segment.yaml)")
    seg.add_argument("--checkpoint", help="weights file (sets the 'checkpoint' parameter)")
    seg.add_argument("--random-weights", choices=RANDOM_SIZES, help="random weights (tests, benchmarks)")
    seg.add_argument("--queries", help="initial queries, e.g. 'pot/handle; knife handle'")
    seg.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="any parameter")
    seg.add_argument("-r", "--remap", action="append", default=[], metavar="FROM:=TO",
                     help="e.g. image:=/camera/color/image_raw (also camera_info, depth, __ns)")
    seg.add_argument("--name", default="partclipseg", help="node name")
    seg.add_argument("--no-autostart", action="store_true",
                     help="leave the node unconfigured (drive it through its lifecycle services)")
    seg.set_defaults(func=cmd_segment)


def build_parser(ros_args: Sequence[str] = ()) -> argparse.ArgumentParser:
    from . import bench, demo, stress

    parser = argparse.ArgumentParser(prog="partclipseg-ros", description="PartCLIPSeg ROS 2 node.")
    parser.set_defaults(ros_args=list(ros_args))
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (add_segment_parser, demo.add_parser, bench.add_parser, stress.add_parser):
        register(sub)
    return with_defaults(parser)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        index = argv.index("--ros-args")
        argv, ros_args = argv[:index], argv[index + 1:]
    return run(argv, lambda: build_parser(ros_args))

