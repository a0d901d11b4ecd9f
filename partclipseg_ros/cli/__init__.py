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
from ..launch_arguments import (
    BY_NAME, DEFAULT_NAMESPACE, DEFAULT_NODE_NAME, autostart, node_setting, parameter_overrides, parse_assignments,
    remappings,
)


def start_values(args: argparse.Namespace) -> dict[str, str]:
    """The launch arguments (``name:=value``, launch_arguments.py) with the option shortcuts applied over them."""
    values = parse_assignments(args.arguments)
    shortcuts = {"params_file": args.params_file, "checkpoint": args.checkpoint, "random_weights": args.random_weights,
                 "queries": args.queries, "node_name": args.name, "namespace": args.namespace}
    values.update({name: value for name, value in shortcuts.items() if value is not None})
    if args.no_autostart:
        values["autostart"] = "false"
    if values.get("queries"):
        check_text(values["queries"])  # ROS would cut a NUL short silently
    return values


def ros_arguments(args: argparse.Namespace, values: dict[str, str]) -> list[str]:
    """The ``--ros-args`` list: parameters file, the arguments' parameters and remaps, namespace and name, then
    -p, -r and raw ROS arguments (which win)."""
    out = ["--ros-args", "--params-file", node_setting(values, "params_file") or str(share_path("config",
                                                                                              "segment.yaml"))]
    for name, value in parameter_overrides(values).items():
        out += ["-p", f"{name}:={json.dumps(value)}"]
    for source, target in remappings(values):
        out += ["-r", f"{source}:={target}"]
    out += ["-r", f"__ns:=/{node_setting(values, 'namespace').strip('/')}",
            "-r", f"__node:={node_setting(values, 'node_name')}"]
    for param in args.param:
        out += ["-p", param]
    for remap in args.remap:
        out += ["-r", remap]
    return out + list(args.ros_args)


def cmd_segment(args: argparse.Namespace) -> int:
    import rclpy

    from ..segment_node import SegmentNode, run as run_node

    values = start_values(args)
    use_shm_profile()
    rclpy.init(args=["partclipseg-ros", *ros_arguments(args, values)])
    return run_node(SegmentNode(), autostart=autostart(values))


SEGMENT_FLAGS = ("--no-autostart", "-h", "--help")  # segment's options that take no value


def add_segment_parser(sub: argparse._SubParsersAction) -> None:
    seg = sub.add_parser("segment", help="run the segment node, configured and active (= launch/segment.launch.py)",
                         description="The node as `ros2 launch partclipseg_ros segment.launch.py` starts it, with the "
                                     "same name:=value arguments: " + ", ".join(BY_NAME) + ".")
    seg.add_argument("arguments", nargs="*", metavar="NAME:=VALUE",
                     help="launch arguments, e.g. image:=/camera/color/image_raw checkpoint:=weights.pth")
    seg.add_argument("--params-file", help="parameters YAML (default: config/segment.yaml)")
    seg.add_argument("--checkpoint", help="weights file (= checkpoint:=)")
    seg.add_argument("--random-weights", choices=RANDOM_SIZES, help="random weights for tests and benchmarks "
                                                                    "(= random_weights:=)")
    seg.add_argument("--queries", help="initial queries, e.g. 'pot/handle; knife handle' (= queries:=)")
    seg.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="any parameter")
    seg.add_argument("-r", "--remap", action="append", default=[], metavar="FROM:=TO",
                     help="e.g. image:=/camera/color/image_raw (also camera_info, depth)")
    seg.add_argument("--name", help=f"node name (= node_name:=, default {DEFAULT_NODE_NAME})")
    seg.add_argument("--namespace", help=f"namespace of the node and its topics (= namespace:=, default "
                                         f"{DEFAULT_NAMESPACE})")
    seg.add_argument("--no-autostart", action="store_true",
                     help="leave the node unconfigured (drive it through its lifecycle services; = autostart:=false)")
    seg.set_defaults(func=cmd_segment)


def build_parser(ros_args: Sequence[str] = ()) -> argparse.ArgumentParser:
    from . import bench, camera, demo, stress

    parser = argparse.ArgumentParser(prog="partclipseg-ros", description="PartCLIPSeg ROS 2 node.")
    parser.set_defaults(ros_args=list(ros_args))
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (add_segment_parser, demo.add_parser, camera.add_parser, bench.add_parser, stress.add_parser):
        register(sub)
    return with_defaults(parser)


def assignments_first(argv: list[str]) -> list[str]:
    """``segment``'s ``name:=value`` arguments moved next to the command, wherever they were typed (argparse takes
    a positional list only in one piece); the values of -p/-r and other options stay where they are."""
    if not argv or argv[0] != "segment":
        return argv
    assignments, rest = [], []
    for previous, token in zip(argv, argv[1:]):
        option_value = previous.startswith("-") and previous not in SEGMENT_FLAGS
        (assignments if ":=" in token and not token.startswith("-") and not option_value else rest).append(token)
    return ["segment", *assignments, *rest]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        index = argv.index("--ros-args")
        argv, ros_args = argv[:index], argv[index + 1:]
    return run(assignments_first(argv), lambda: build_parser(ros_args))

