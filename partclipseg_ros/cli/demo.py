"""``partclipseg-ros demo``: the segment node on the bundled samples, end to end over DDS.

One process, one executor, three nodes: the segment node (configured and activated as the launch file does), a
player that publishes the sample images as rgb8 frames of a camera (``/demo/camera/image``) at a fixed rate after
setting the queries through ``set_queries``, and a recorder that prints one line per PartSegmentation and writes
the ``overlay`` images. Samples with depth (the Middlebury motorcycle, the rendered kitchen) also get their depth image
(32FC1) and camera_info, with the image's stamp and frame; their line adds the node's 3D regions from ``affordances``.
Frames still go through DDS (rclpy has no intra-process transport).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from partclipseg.affordances import load_affordances
from partclipseg.checkpoint import CheckpointError
from partclipseg.cli.options import add_model_arguments, backend_options
from partclipseg.defaults import BUNDLED_CHECKPOINT, weights_hint
from partclipseg.geometry.rotations import matrix_from_quaternion
from partclipseg.overlay import UNKNOWN_MARK
from partclipseg.queries import parse_queries
from partclipseg.data.samples import SAMPLES, DepthSample, load_depth, load_sample

from ..defaults import DEMO_FRAMES, DEMO_RATE_HZ
from ..environment import keep_dds_local, use_shm_profile
from ..launch_arguments import DEFAULT_NAMESPACE

if TYPE_CHECKING:
    from rclpy.executors import Executor
    from rclpy.publisher import Publisher

CAMERA_TOPIC = "/demo/camera/image"
DEPTH_TOPIC = "/demo/camera/depth"
CAMERA_INFO_TOPIC = "/demo/camera/camera_info"
CAMERA_FRAME = "demo_camera_optical_frame"


@dataclass(frozen=True)
class Sent:
    index: int
    sample: str
    published: float  # time.monotonic()
    with_depth: bool


def depth_sample(name: str) -> DepthSample | None:
    """The sample's real depth and calibration, None for photos without."""
    try:
        return load_depth(name)
    except KeyError:
        return None


def describe_regions(msg) -> str:
    """An AffordanceArray in one line: per region where it is, its long axis and how many points it has."""
    parts = []
    for region in msg.regions:
        p, q = region.pose.pose.position, region.pose.pose.orientation
        axis = matrix_from_quaternion((q.x, q.y, q.z, q.w))[:, 2]
        affordance = f" ({region.affordance})" if region.affordance else ""
        unknown = f" {UNKNOWN_MARK}" if region.unknown_query else ""
        parts.append(f"{region.query}{affordance}{unknown} at ({p.x:.2f}, {p.y:.2f}, {p.z:.2f}) m, axis "
                     f"({axis[0]:.2f}, {axis[1]:.2f}, {axis[2]:.2f}), {region.point_count} pts")
    return "; ".join(parts) or "no region (the node's warning says why)"


def describe_parts(msg) -> str:
    """The parts of a PartSegmentation found in this frame, with their pixel counts; queries the model never
    learned are marked."""
    found = [f"{p.query} {p.pixel_count} px" + (f" {UNKNOWN_MARK}" if p.unknown_query else "")
             for p in msg.parts if p.pixel_count]
    return f"parts found {len(found)}/{len(msg.queries)}: {', '.join(found) or '-'}"


def demo_weights(args: argparse.Namespace) -> tuple[str, str]:
    """(checkpoint, random_weights) parameters: the options, else the bundled demo model if it is there."""
    if args.checkpoint or args.random_weights:
        return args.checkpoint or "", args.random_weights or ""
    if BUNDLED_CHECKPOINT.exists():
        return str(BUNDLED_CHECKPOINT), ""
    raise CheckpointError(
        f"the bundled demo model {BUNDLED_CHECKPOINT} is not there (it ships with the package once trained).\n"
        "See the pipeline run with random weights (masks are meaningless):\n"
        "  partclipseg-ros demo --random-weights tiny\n"
        f"or give real weights with --checkpoint PATH. {weights_hint()}"
    )


def default_samples(checkpoint: str) -> list[str]:
    """The bundled model knows only synthetic kitchen objects: it plays the kitchen scene; other weights play all."""
    return ["kitchen"] if checkpoint == str(BUNDLED_CHECKPOINT) else list(SAMPLES)


def cmd_demo(args: argparse.Namespace) -> int:
    checkpoint, random_weights = demo_weights(args)
    names = args.sample or default_samples(checkpoint)
    queries = args.query or [SAMPLES[name].queries for name in names]
    parse_queries(queries, affordances=load_affordances())  # a bad --query fails here, with the parser's message
    keep_dds_local()
    use_shm_profile()

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from ..image_conversion import image_to_numpy, numpy_to_image
    from ..messages import camera_info_message
    from ..msg import AffordanceArray, PartSegmentation
    from ..segment_node import SegmentNode
    from ..srv import SetQueries

    frames = {name: load_sample(name) for name in names}
    depths = {name: sample for name in names if (sample := depth_sample(name)) is not None}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    overrides = [Parameter("checkpoint", value=checkpoint), Parameter("random_weights", value=random_weights),
                 Parameter("trust_checkpoint", value=args.trust_checkpoint), Parameter("backend", value=args.backend)]
    overrides += [Parameter(name, value=value) for name, value in asdict(backend_options(args)).items()]
    remaps = {"image": CAMERA_TOPIC, "depth": DEPTH_TOPIC, "camera_info": CAMERA_INFO_TOPIC}
    segment = SegmentNode(namespace=DEFAULT_NAMESPACE, context=context, parameter_overrides=overrides,
                          cli_args=["--ros-args"] + [a for k, v in remaps.items() for a in ("-r", f"{k}:={v}")])
    demo = Node("partclipseg_demo", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(segment)
    executor.add_node(demo)
    sent: dict[tuple[int, int], Sent] = {}
    answered: dict[tuple[int, int], float] = {}  # stamp -> latency ms
    overlays: dict[tuple[int, int], Image] = {}
    waiting_3d: dict[tuple[int, int], str] = {}  # frames with depth: their line, until their 3D regions arrive
    regions: dict[tuple[int, int], AffordanceArray] = {}

    def on_segmentation(msg: PartSegmentation) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        frame = sent.get(key)
        if frame is None:
            return
        latency = (time.monotonic() - frame.published) * 1e3
        answered[key] = latency
        line = (f"frame {frame.index:3d} {frame.sample:<10} {msg.labels.width}x{msg.labels.height}  "
                f"latency {latency:6.1f} ms  {describe_parts(msg)}")
        if frame.with_depth:
            waiting_3d[key] = line
            print_3d(key)
        else:
            print(line, flush=True)

    def on_affordances(msg: AffordanceArray) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        regions[key] = msg
        print_3d(key)

    def print_3d(key: tuple[int, int], give_up: bool = False) -> None:
        if key in waiting_3d and (key in regions or give_up):
            found = describe_regions(regions[key]) if key in regions else "none (see the node's warning)"
            print(f"{waiting_3d.pop(key)}\n          3D: {found}", flush=True)

    def on_overlay(msg: Image) -> None:
        overlays[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg

    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    demo.create_subscription(PartSegmentation, f"/{DEFAULT_NAMESPACE}/segmentation", on_segmentation, reliable)
    demo.create_subscription(Image, f"/{DEFAULT_NAMESPACE}/overlay", on_overlay, reliable)
    if depths:  # the node computes 3D only while someone subscribes
        demo.create_subscription(AffordanceArray, f"/{DEFAULT_NAMESPACE}/affordances", on_affordances, reliable)
    camera = demo.create_publisher(Image, CAMERA_TOPIC, qos_profile_sensor_data)
    depth_camera = demo.create_publisher(Image, DEPTH_TOPIC, qos_profile_sensor_data)
    camera_info = demo.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, qos_profile_sensor_data)
    set_queries = demo.create_client(SetQueries, f"/{DEFAULT_NAMESPACE}/set_queries")
    try:
        if segment.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return 2  # the node logged why
        segment.trigger_activate()
        print(f"weights: {segment.model_description}", flush=True)
        if not set_queries.wait_for_service(timeout_sec=10.0):
            raise RuntimeError("the segment node's set_queries service did not appear")
        future = set_queries.call_async(SetQueries.Request(queries=queries))
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        reply = future.result()
        if reply is None or not reply.success:
            raise RuntimeError(reply.message if reply else "set_queries did not answer")
        print(f"queries: {'; '.join(reply.active_queries)}", flush=True)
        wait_for_subscriber(executor, camera)
        period = 1.0 / args.rate
        deadline = time.monotonic() + (args.seconds if args.seconds else float("inf"))
        count = args.frames if not args.seconds else sys.maxsize
        next_time = time.monotonic()
        for index in range(count):
            if time.monotonic() >= deadline:
                break
            name = names[index % len(names)]
            header = Header(stamp=demo.get_clock().now().to_msg(), frame_id=CAMERA_FRAME)
            if name in depths:  # depth and camera_info first: they are there when the node pairs the frame
                depth_camera.publish(numpy_to_image(depths[name].depth, "32FC1", header))
                camera_info.publish(camera_info_message(depths[name].intrinsics, header))
            sent[(header.stamp.sec, header.stamp.nanosec)] = Sent(index, name, time.monotonic(), name in depths)
            camera.publish(numpy_to_image(frames[name], "rgb8", header))
            next_time += period
            while time.monotonic() < next_time:
                executor.spin_once(timeout_sec=max(0.0, next_time - time.monotonic()))
        settle = time.monotonic() + 10.0
        last = next(reversed(sent), None)  # always answered (latest frame only); older ones may have been replaced
        while (last not in answered or waiting_3d) and time.monotonic() < settle:
            executor.spin_once(timeout_sec=0.1)
        for _ in range(10):
            executor.spin_once(timeout_sec=0.05)
        for key in list(waiting_3d):
            print_3d(key, give_up=True)
        for key, frame in sent.items():
            if key in overlays:
                rgb, _ = image_to_numpy(overlays[key])
                cv2.imwrite(str(out / f"{frame.index:03d}_{frame.sample}.png"), np.ascontiguousarray(rgb[:, :, ::-1]))
        mean = f", mean latency {sum(answered.values()) / len(answered):.1f} ms" if answered else ""
        print(f"{len(sent)} frames published, {len(answered)} answered{mean} (a frame that arrives while the model "
              f"is busy replaces the waiting one); overlays in {out}", flush=True)
        if random_weights:
            print("warning: random weights: the masks are meaningless", file=sys.stderr)
        return 0 if answered else 1
    finally:
        segment.close()
        executor.shutdown()
        segment.destroy_node()
        demo.destroy_node()
        rclpy.try_shutdown(context=context)


def wait_for_subscriber(executor: Executor, publisher: Publisher, timeout: float = 10.0) -> None:
    """Spin until ``publisher`` has a subscriber (the node's image subscription), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)


def add_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run the node on the bundled samples (with depth for the motorcycle and the "
                                       "kitchen), print one line per frame, write overlays")
    demo.add_argument("--sample", action="append", choices=list(SAMPLES),
                      help="sample(s) to play (default: the kitchen scene with the bundled model, else all)")
    demo.add_argument("--query", action="append", help="queries (default: the samples' own, e.g. 'cup/handle')")
    demo.add_argument("--rate", type=float, default=DEMO_RATE_HZ, help="frames per second")
    demo.add_argument("--frames", type=int, default=DEMO_FRAMES, help="stop after this many frames")
    demo.add_argument("--seconds", type=float, help="stop after this many seconds instead")
    demo.add_argument("--out", default="out/demo", help="folder for the overlay images")
    add_model_arguments(demo)
    demo.set_defaults(func=cmd_demo)
