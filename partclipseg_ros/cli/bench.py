"""``partclipseg-ros bench``: end-to-end latency through the segment node, and the node's overhead.

The node runs in its own process (``partclipseg-ros segment``, random weights: speed does not depend on their
values); this process is the camera (best effort, like a driver) and the consumer (reliable). Frames go one at a
time (the next one after the answer), so none waits behind another.

* e2e: header stamp (set right before publish) -> PartSegmentation received, same clock.
* model: the core's own time per frame (``Result.timings``: preprocess + image encoder + decoder + postprocess),
  averaged by the node over exactly the measured frames and read from its /diagnostics: the baseline, measured in
  the same run.
* overhead = e2e - model: image conversion, message building, overlay check and both DDS hops.

``--geometry`` (also printed after the model table): the node's 3D stage per frame at 640x480 in this process, one
step at a time, on a rendered table scene with 16UC1 depth and 4 parts: the core's ``affordance_regions`` (the
baseline) and what the node adds to it: pairing and the depth view, the AffordanceArray with its PointCloud2s, the
MarkerArray, and serialising both (what publish does before DDS takes over).
"""
from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from partclipseg.benchmark.common import median_ms, table_scene
from partclipseg.factory import RANDOM_SIZES
from partclipseg.postprocess import PartResult
from partclipseg.queries import parse_queries
from partclipseg.geometry.regions import affordance_regions
from partclipseg.data.samples import load_sample

from ..defaults import BENCH_QUERIES
from ..environment import keep_dds_local, use_shm_profile
from .client import Client

NODE = "partclipseg_bench"
DIAGNOSTICS_PERIOD = 0.25


def _resolution(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


class BenchClient(Client):
    """Camera + consumer + /diagnostics reader in one rclpy node."""

    def __init__(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from ..msg import PartSegmentation

        super().__init__("partclipseg_bench_client")
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.camera = self.node.create_publisher(Image, "/bench/image", qos_profile_sensor_data)
        self.answers: dict[int, int] = {}  # stamp ns -> receive time ns
        self.statuses: list[dict[str, str]] = []
        self.node.create_subscription(PartSegmentation, f"/{NODE}/segmentation", self._on_answer, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)

    def _on_answer(self, msg) -> None:
        self.answers[msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec] = time.time_ns()

    def _on_diagnostics(self, msg) -> None:
        self.statuses += [{kv.key: kv.value for kv in s.values} for s in msg.status
                          if s.name == f"/{NODE}/{NODE}: part segmentation"]

    def frame(self, image, process: subprocess.Popen, timeout: float) -> float:
        """Publish one frame (again if a best-effort frame got lost) and return its e2e latency in ms."""
        from ..image_conversion import numpy_to_image

        msg = numpy_to_image(image, "rgb8")
        msg.header.frame_id = "bench_camera_optical_frame"
        end = time.monotonic() + timeout
        while True:
            stamp = time.time_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
            self.camera.publish(msg)
            try:
                self.spin_until(lambda: stamp in self.answers, min(5.0, end - time.monotonic()), "answer", process)
                return (self.answers[stamp] - stamp) / 1e6
            except RuntimeError:
                if time.monotonic() > end or process.poll() is not None:
                    raise


def measure(client: BenchClient, process: subprocess.Popen, size: str, resolution: tuple[int, int],
            frames: int) -> dict[str, float]:
    width, height = resolution
    image = cv2.resize(load_sample("coffee"), (width, height), interpolation=cv2.INTER_AREA)
    timeout = 300.0 if size == "full" else 60.0
    for _ in range(2):  # warm-up: first-call allocations at this resolution
        client.frame(image, process, timeout)
    client.executor.spin_once(timeout_sec=0.0)
    pause_end = time.monotonic() + 3 * DIAGNOSTICS_PERIOD  # the warm-up frames' diagnostics window closes
    client.spin_until(lambda: time.monotonic() > pause_end, 10, "pause", process)
    first_status = len(client.statuses)
    e2e = [client.frame(image, process, timeout) for _ in range(frames)]
    pause_end = time.monotonic() + 3 * DIAGNOSTICS_PERIOD
    client.spin_until(lambda: time.monotonic() > pause_end, 10, "pause", process)
    windows = [s for s in client.statuses[first_status:] if int(s["window_published"])]
    counted = sum(int(s["window_published"]) for s in windows)
    if counted < frames:
        raise RuntimeError(f"benchmark: the node's diagnostics cover {counted} of {frames} frames")
    model = sum(float(s["model_ms_mean"]) * int(s["window_published"]) for s in windows) / counted
    node_latency = sum(float(s["latency_ms_mean"]) * int(s["window_published"]) for s in windows) / counted
    ordered = sorted(e2e)
    return {
        "frames": frames,
        "e2e": statistics.mean(e2e),
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "model": model,
        "overhead": statistics.mean(e2e) - model,
        "to_publish": node_latency - model,
    }


def start_node(size: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "partclipseg_ros.cli", "segment", "--random-weights", size,
               "--queries", BENCH_QUERIES, "--name", NODE, "--namespace", NODE, "image:=/bench/image",
               "-p", f"diagnostics_period:={DIAGNOSTICS_PERIOD}"]
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)


def geometry_table(repeats: int) -> list[str]:
    """The 3D stage per frame at 640x480 (see the module docstring), as markdown table lines."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from ..depth_pairing import DepthPairing
    from ..image_conversion import numpy_to_image
    from ..messages import affordance_array, camera_info_message, region_markers

    scene = table_scene()
    k, depth = scene.intrinsics, scene.depth_mm
    queries = parse_queries("pot/handle; knife/blade; pot/lid; kettle/spout")
    header = Header(frame_id="bench_camera_optical_frame")
    header.stamp.sec = 1
    depth_msg, info_msg = numpy_to_image(depth, "16UC1", header), camera_info_message(k, header)
    lines = ["| parts x px | points | core affordance_regions (baseline) | pairing + depth view | AffordanceArray "
             "(clouds) | MarkerArray | serialise both | node extra | node total |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for pixels in (1_000, 5_000, 20_000):
        labels = scene.rings(4, pixels)  # four parts: consecutive rings of a disc over the objects and the table
        parts = [PartResult(q, i + 1, 0.9, pixels, (0, 0, 0, 0)) for i, q in enumerate(queries)]
        regions, _ = affordance_regions(parts, labels, depth, k)

        def pairing() -> None:
            sync = DepthPairing(5, "depth", "camera_info")
            sync.add_depth(depth_msg)
            sync.add_camera_info(info_msg)
            sync.inputs(header, sync.pair(header), 0.02, 0.0, 0.0)

        array, markers = affordance_array(regions, header, header), region_markers(regions, header)
        steps = [
            median_ms(lambda: affordance_regions(parts, labels, depth, k), repeats),
            median_ms(pairing, repeats),
            median_ms(lambda: affordance_array(regions, header, header), repeats),
            median_ms(lambda: region_markers(regions, header), repeats),
            median_ms(lambda: (serialize_message(array), serialize_message(markers)), repeats),
        ]
        extra = sum(steps[1:])
        points = sum(r.geometry.point_count for r in regions)
        lines.append(f"| 4 x {pixels} | {points} | " + " | ".join(f"{t:.2f}" for t in steps)
                     + f" | {extra:.2f} | {steps[0] + extra:.2f} |")
    return lines


def print_geometry_table(repeats: int) -> None:
    print(f"\npartclipseg-ros bench --geometry: the node's 3D stage per frame, 640x480 16UC1 depth, 4 parts, in this "
          f"process; median ms of {repeats} runs")
    print("\n".join(geometry_table(repeats)))


def cmd_bench(args: argparse.Namespace) -> int:
    if args.geometry:
        print_geometry_table(args.repeats)
        return 0
    keep_dds_local()
    if args.delivery:
        from .bench_delivery import print_delivery_table

        print_delivery_table(args.delivery_seconds, args.resolutions)
        return 0
    if args.cameras:
        from .bench_cameras import print_cameras_table

        print_cameras_table(args.cameras, args.sizes[-1], args.camera_seconds, args.camera_backend)
        return 0
    use_shm_profile()
    resolutions = [_resolution(r) for r in args.resolutions]
    client = BenchClient()
    rows = []
    try:
        for size in args.sizes:
            log = Path(tempfile.mkstemp(prefix=f"partclipseg-bench-{size}-", suffix=".log")[1])
            process = start_node(size, log)
            try:
                client.spin_until(lambda: any(s.get("state") == "active" for s in client.statuses[-3:]),
                                  300, "active node", process)
                frames = args.frames if size == "tiny" else args.full_frames
                for resolution in resolutions:
                    row = measure(client, process, size, resolution, frames)
                    rows.append((size, resolution, row))
                    print(f"  {size} {resolution[0]}x{resolution[1]}: e2e {row['e2e']:.1f} ms, "
                          f"model {row['model']:.1f} ms", file=sys.stderr, flush=True)
            except RuntimeError:
                print(log.read_text()[-3000:], file=sys.stderr)
                raise
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(30)
                client.statuses.clear()
    finally:
        client.close()
    print(f"partclipseg-ros bench: {len(BENCH_QUERIES.split(';'))} queries, random weights, the shipped config "
          "(backend auto), node in its own process, Fast DDS shared-memory profile; ms per frame, one frame at a time")
    print("| model | resolution | frames | e2e mean | e2e p95 | model (baseline) | node overhead (e2e - model) "
          "| of which stamp->publish |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for size, (width, height), row in rows:
        print(f"| {size} | {width}x{height} | {row['frames']} | {row['e2e']:.1f} | {row['p95']:.1f} | "
              f"{row['model']:.1f} | {row['overhead']:.1f} | {row['to_publish']:.1f} |")
    print_geometry_table(args.repeats)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="end-to-end latency through the node and its overhead over the model")
    bench.add_argument("--sizes", nargs="+", choices=RANDOM_SIZES, default=list(RANDOM_SIZES),
                       help="model sizes (random weights)")
    bench.add_argument("--resolutions", nargs="+", default=["640x480", "1280x720"], help="WIDTHxHEIGHT")
    bench.add_argument("--frames", type=int, default=30, help="measured frames per resolution (tiny model)")
    bench.add_argument("--full-frames", type=int, default=10, help="measured frames per resolution (full model)")
    bench.add_argument("--geometry", action="store_true", help="only the 3D stage table (no node, no model)")
    bench.add_argument("--delivery", action="store_true",
                       help="only the frame-delivery table: a camera process (default middleware settings or the "
                            "package's profile; best effort or reliable; raw or compressed) at 15 Hz into the node")
    bench.add_argument("--delivery-seconds", type=float, default=10.0, help="seconds per delivery case")
    bench.add_argument("--cameras", type=int, default=0, metavar="N",
                       help="only the multi-camera table: N cameras at 15 Hz into one node, against N single-camera "
                            "nodes (model size: the last of --sizes)")
    bench.add_argument("--camera-seconds", type=float, default=30.0, help="seconds measured per setup")
    bench.add_argument("--camera-backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                       help="--cameras: the nodes' backend (torch encodes the cameras' frames as one batch)")
    bench.add_argument("--repeats", type=int, default=30, help="runs per step of the 3D stage table")
    bench.set_defaults(func=cmd_bench)
