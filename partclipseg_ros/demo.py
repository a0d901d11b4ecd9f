"""``partclipseg-ros demo``: the segment node on the bundled sample photos, end to end over DDS.

One process, one executor, three nodes: the segment node (configured and activated as the launch file does), a
player that publishes the sample photos as rgb8 frames of a camera (``/demo/camera/image``) at a fixed rate after
setting the queries through ``~/set_queries``, and a recorder that prints one line per PartSegmentation and writes
the ``~/overlay`` images. Frames still go through DDS (rclpy has no intra-process transport).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from partclipseg.checkpoint import CheckpointError
from partclipseg.cli import add_model_arguments
from partclipseg.defaults import BUNDLED_CHECKPOINT, DEMO_FRAMES, DEMO_RATE_HZ, weights_hint
from partclipseg.queries import parse_queries
from partclipseg.samples import SAMPLES, load_sample

from .environment import keep_dds_local, use_shm_profile

if TYPE_CHECKING:
    from rclpy.executors import Executor
    from rclpy.publisher import Publisher

CAMERA_TOPIC = "/demo/camera/image"
CAMERA_FRAME = "demo_camera_optical_frame"


@dataclass(frozen=True)
class Sent:
    index: int
    sample: str
    published: float  # time.monotonic()


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


def cmd_demo(args: argparse.Namespace) -> int:
    checkpoint, random_weights = demo_weights(args)
    names = args.sample or list(SAMPLES)
    queries = args.query or [SAMPLES[name].queries for name in names]
    parse_queries(queries)  # a bad --query fails here, with the parser's message
    keep_dds_local()
    use_shm_profile()

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from .image_conversion import image_to_numpy, numpy_to_image
    from .msg import PartSegmentation
    from .segment_node import SegmentNode
    from .srv import SetQueries

    frames = {name: load_sample(name) for name in names}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    overrides = [Parameter("checkpoint", value=checkpoint), Parameter("random_weights", value=random_weights),
                 Parameter("trust_checkpoint", value=args.trust_checkpoint), Parameter("backend", value=args.backend),
                 Parameter("device", value=args.device), Parameter("precision", value=args.precision)]
    segment = SegmentNode(context=context, parameter_overrides=overrides,
                          cli_args=["--ros-args", "-r", f"image:={CAMERA_TOPIC}"])
    demo = Node("partclipseg_demo", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(segment)
    executor.add_node(demo)
    sent: dict[tuple[int, int], Sent] = {}
    answered: list[float] = []
    overlays: dict[tuple[int, int], Image] = {}

    def on_segmentation(msg: PartSegmentation) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        frame = sent.get(key)
        if frame is None:
            return
        latency = (time.monotonic() - frame.published) * 1e3
        answered.append(latency)
        found = [p for p in msg.parts if p.pixel_count]
        parts = ", ".join(f"{p.query} {p.pixel_count} px" for p in found) or "-"
        print(f"frame {frame.index:3d} {frame.sample:<10} {msg.labels.width}x{msg.labels.height}  "
              f"latency {latency:6.1f} ms  parts found {len(found)}/{len(msg.queries)}: {parts}", flush=True)

    def on_overlay(msg: Image) -> None:
        overlays[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg

    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    demo.create_subscription(PartSegmentation, "/partclipseg/segmentation", on_segmentation, reliable)
    demo.create_subscription(Image, "/partclipseg/overlay", on_overlay, reliable)
    camera = demo.create_publisher(Image, CAMERA_TOPIC, qos_profile_sensor_data)
    set_queries = demo.create_client(SetQueries, "/partclipseg/set_queries")
    try:
        if segment.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return 2  # the node logged why
        segment.trigger_activate()
        print(f"weights: {segment.model_description}", flush=True)
        if not set_queries.wait_for_service(timeout_sec=10.0):
            raise RuntimeError("the segment node's ~/set_queries service did not appear")
        future = set_queries.call_async(SetQueries.Request(queries=queries))
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        reply = future.result()
        if reply is None or not reply.success:
            raise RuntimeError(reply.message if reply else "~/set_queries did not answer")
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
            stamp = demo.get_clock().now().to_msg()
            image = numpy_to_image(frames[name], "rgb8")
            image.header.stamp, image.header.frame_id = stamp, CAMERA_FRAME
            sent[(stamp.sec, stamp.nanosec)] = Sent(index, name, time.monotonic())
            camera.publish(image)
            next_time += period
            while time.monotonic() < next_time:
                executor.spin_once(timeout_sec=max(0.0, next_time - time.monotonic()))
        settle = time.monotonic() + 10.0
        while len(answered) < len(sent) and time.monotonic() < settle:
            executor.spin_once(timeout_sec=0.1)
        for _ in range(10):
            executor.spin_once(timeout_sec=0.05)
        for key, frame in sent.items():
            if key in overlays:
                rgb, _ = image_to_numpy(overlays[key])
                cv2.imwrite(str(out / f"{frame.index:03d}_{frame.sample}.png"), np.ascontiguousarray(rgb[:, :, ::-1]))
        mean = f", mean latency {sum(answered) / len(answered):.1f} ms" if answered else ""
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
    demo = sub.add_parser("demo", help="run the node on the bundled sample photos, print one line per frame, "
                                       "write overlays")
    demo.add_argument("--sample", action="append", choices=list(SAMPLES), help="sample photo(s) to play (default: all)")
    demo.add_argument("--query", action="append", help="queries (default: the samples' own, e.g. 'cup/handle')")
    demo.add_argument("--rate", type=float, default=DEMO_RATE_HZ, help="frames per second")
    demo.add_argument("--frames", type=int, default=DEMO_FRAMES, help="stop after this many frames")
    demo.add_argument("--seconds", type=float, help="stop after this many seconds instead")
    demo.add_argument("--out", default="out/demo", help="folder for the overlay images")
    add_model_arguments(demo)
    demo.set_defaults(func=cmd_demo)
