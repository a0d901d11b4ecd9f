"""``partclipseg-ros camera``: a stand-in camera driver in its own process. It publishes a bundled sample (with its
depth and camera_info where it has them) at a fixed rate, raw or compressed, best effort or reliable, with whatever
middleware settings its environment has (like a stock driver: no profile file unless you set one). Used by the
delivery benchmark and the tests; handy to try the node without a camera."""
from __future__ import annotations

import argparse
import json
import time

import cv2

from partclipseg.data.samples import SAMPLES, load_depth, load_sample

from ..compressed import COMPRESSED, COMPRESSED_DEPTH, encode_depth, encode_image
from ..environment import keep_dds_local


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ValueError(f"--size must be WIDTHxHEIGHT, got {text!r}")
    return int(width), int(height)


def cmd_camera(args: argparse.Namespace) -> int:
    keep_dds_local()
    import rclpy
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from std_msgs.msg import Header

    from ..image_conversion import numpy_to_image
    from ..messages import camera_info_message

    width, height = _size(args.size)
    depth = intrinsics = None
    if args.depth_topic:  # a sample with depth keeps its aspect ratio (its intrinsics scale with it)
        sample = load_depth(args.sample)
        intrinsics = sample.intrinsics.scaled(width / sample.intrinsics.width)
        width, height = intrinsics.width, intrinsics.height
        depth = cv2.resize(sample.depth, (width, height), interpolation=cv2.INTER_NEAREST)
    rgb = cv2.resize(load_sample(args.sample), (width, height), interpolation=cv2.INTER_AREA)
    frame_bytes = len(encode_image(rgb, "rgb8").data) if args.transport == "compressed" else rgb.nbytes
    rclpy.init()
    node = rclpy.create_node("partclipseg_camera")
    history = args.depth or (10 if args.reliable else 5)  # ROS's default and sensor-data profiles, as drivers use them
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=history, durability=DurabilityPolicy.VOLATILE,
                     reliability=ReliabilityPolicy.RELIABLE if args.reliable else ReliabilityPolicy.BEST_EFFORT)
    compressed = args.transport == COMPRESSED
    image_pub = node.create_publisher(CompressedImage if compressed else Image,
                                      args.topic + (f"/{COMPRESSED}" if compressed else ""), qos)
    depth_pub = info_pub = None
    if depth is not None:
        depth_pub = node.create_publisher(CompressedImage if compressed else Image,
                                          args.depth_topic + (f"/{COMPRESSED_DEPTH}" if compressed else ""), qos)
        info_pub = node.create_publisher(CameraInfo, args.camera_info_topic, qos)
    sent, start = 0, time.monotonic()
    try:
        deadline = time.monotonic() + args.wait
        while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        time.sleep(args.settle)
        start = time.monotonic()
        while args.frames <= 0 or sent < args.frames:
            header = Header(stamp=node.get_clock().now().to_msg(), frame_id=args.frame_id)
            if depth_pub is not None:
                depth_pub.publish(encode_depth(depth, header) if compressed else numpy_to_image(depth, "32FC1", header))
                info_pub.publish(camera_info_message(intrinsics, header))
            image_pub.publish(encode_image(rgb, "rgb8", header) if compressed else numpy_to_image(rgb, "rgb8", header))
            sent += 1
            next_time = start + sent / args.rate
            while (now := time.monotonic()) < next_time:
                rclpy.spin_once(node, timeout_sec=next_time - now)
    except KeyboardInterrupt:
        pass
    finally:
        print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - start, 2), "bytes_per_frame": frame_bytes}),
              flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    camera = sub.add_parser("camera", help="publish a bundled sample as a camera would (own process, default "
                                           "middleware settings unless the environment sets some)")
    camera.add_argument("--topic", default="/camera/color/image_raw", help="image topic (compressed: + /compressed)")
    camera.add_argument("--depth-topic", default="", help="also publish depth here, and camera_info (samples with "
                                                           "depth: kitchen, motorcycle; their aspect ratio is kept)")
    camera.add_argument("--camera-info-topic", default="/camera/color/camera_info", help="with --depth-topic")
    camera.add_argument("--frame-id", default="camera_color_optical_frame",
                        help="frame_id of the published headers (the optical frame of the colour camera)")
    camera.add_argument("--sample", default="coffee", choices=list(SAMPLES), help="the image (resized to --size)")
    camera.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    camera.add_argument("--rate", type=float, default=15.0, help="frames per second")
    camera.add_argument("--frames", type=int, default=0, help="stop after this many (0: until Ctrl-C)")
    camera.add_argument("--transport", default="raw", choices=("raw", "compressed"),
                        help="raw Image, or image_transport's compressed (JPEG) / compressedDepth (PNG)")
    camera.add_argument("--reliable", action="store_true", help="reliable QoS (default: best effort, as most drivers)")
    camera.add_argument("--depth", type=int, default=0, help="publisher keep-last depth (default: 10 reliable, as "
                                                             "ROS's default profile; 5 best effort, as sensor data)")
    camera.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a subscriber before sending")
    camera.add_argument("--settle", type=float, default=0.5, help="seconds after the subscriber matched")
    camera.set_defaults(func=cmd_camera)
