"""``partclipseg-ros stress``: hostile input at a bounded rate against the segment node, a valid frame checked every
N messages, and (``--soak``) the node's memory and latency over time.

The node runs in its own process as users start it (``partclipseg-ros segment``, by default the bundled model);
this process sends, at most ``--rate`` messages per second, a mix of the hostile inputs of
:mod:`partclipseg_ros.hostile_inputs`: depth images and camera_infos each beside a valid colour frame of their
stamp, malformed depth, camera_info and colour images on their own, queries on ``query``, ``set_queries``
calls and parameter changes the node must refuse. Every ``--check-every`` messages it restores the queries and
sends the valid frame (the rendered kitchen scene with its depth), which must be answered with its segmentation
and its AffordanceArray (with the bundled model: the pot lid's region). Every AffordanceArray received is checked:
a region for a hostile 3D input, or one outside the node's limits, counts as an implausible region published.
Every ``--sample-period`` seconds the node's RSS and the valid frames' latency are sampled.

The table: messages sent, crashes (the node process died), unhandled exceptions (tracebacks in its log), valid
frames answered, implausible regions published, RSS start / end and slope. Exit status 0 when all goals hold.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from partclipseg.data.samples import load_depth
from partclipseg.defaults import BUNDLED_CHECKPOINT, DEPTH_MAX, DEPTH_MIN, MAX_PART_EXTENT, MIN_GEOMETRY_POINTS
from partclipseg.factory import RANDOM_SIZES
from partclipseg.geometry.cloud import read_xyz
from partclipseg.geometry.plausibility import region_problem

from ..environment import keep_dds_local, use_shm_profile
from ..hostile_inputs import (CAMERA_INFO_CASES, DEPTH_CASES, IMAGE_CASES, MALFORMED_CAMERA_INFO, MALFORMED_DEPTH,
                              QUERY_CASES, random_query)
from .client import Client

NODE = "partclipseg_stress"  # node name and namespace: topics /NODE/..., the node itself /NODE/NODE
FQN = f"/{NODE}/{NODE}"
PREFIX = "/stress"
VALID_QUERIES = "pot/lid"  # the bundled model finds the kitchen scene's pot lid (docs/ros.md)
FRAME_ID = "stress_camera_optical_frame"
# what the node must refuse: (parameter, value) pairs outside ranges, of the wrong type, or not changeable now
BAD_PARAMETERS = (
    ("score_threshold", 5.0), ("score_threshold", "high"), ("min_pixels", -3), ("mode", "telepathy"),
    ("depth_min", 50.0), ("depth_max", -1.0), ("depth_max", 1e9), ("max_part_extent", 0.0), ("axis_hint", [0.0] * 3),
    ("axis_hint", [1.0]), ("sync_queue", 10), ("backend", "quantum"), ("checkpoint", "/nonexistent.pth"),
    ("diagnostics_period", 0.01), ("sync_slop", -1.0), ("publish_unknown_3d", "yes"), ("objects", 7),
)
# a message mix per hostile step: (kind, weight)
MIX = (("depth beside a frame", 3), ("camera_info beside a frame", 2), ("malformed depth", 2),
       ("malformed camera_info", 1), ("image", 3), ("query", 2), ("set_queries", 1), ("parameter", 1))


@dataclass
class Sample:
    seconds: float
    sent: int
    rss_mb: float
    latency_ms: float | None  # mean e2e latency of the valid frames answered in the period


@dataclass
class Tally:
    sent: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    valid_stamps: set[int] = field(default_factory=set)  # every other stamp carries a hostile input
    valid_sent: int = 0
    valid_answered: int = 0
    arrays: int = 0
    implausible: list[str] = field(default_factory=list)
    accepted_bad_parameters: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # why a valid frame was not answered
    samples: list[Sample] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    node: dict[str, str] = field(default_factory=dict)  # the node's latest /diagnostics values (both statuses)


def region_implausibility(region, hostile: bool) -> str | None:
    """Why a received AffordanceRegion is one the node should not have published (None if it is plausible)."""
    if hostile:
        return "a region for a hostile 3D input"
    p = region.pose.pose.position
    problem = region_problem(np.array([p.x, p.y, p.z]), np.array([region.extent.x, region.extent.y,
                                                                  region.extent.z]),
                             DEPTH_MIN, DEPTH_MAX, MAX_PART_EXTENT)
    if problem:
        return problem
    cloud = region.points
    points = read_xyz(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height, cloud.is_bigendian,
                      cloud.row_step)
    if region.point_count < MIN_GEOMETRY_POINTS or len(points) != region.point_count:
        return f"{region.point_count} points ({len(points)} in its cloud)"
    if not np.all(np.isfinite(points)) or not np.all((points[:, 2] >= DEPTH_MIN) & (points[:, 2] <= DEPTH_MAX)):
        return "points non-finite or outside depth_min..depth_max"
    return None


class StressClient(Client):
    """Camera, query sender, service and parameter caller, and consumer in one rclpy node."""

    def __init__(self, tally: Tally) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rcl_interfaces.srv import SetParameters
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String

        from ..msg import AffordanceArray, PartSegmentation
        from ..srv import SetQueries

        super().__init__("partclipseg_stress_client")
        self.tally = tally
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.image = self.node.create_publisher(Image, f"{PREFIX}/image", qos_profile_sensor_data)
        self.depth = self.node.create_publisher(Image, f"{PREFIX}/depth", qos_profile_sensor_data)
        self.info = self.node.create_publisher(CameraInfo, f"{PREFIX}/camera_info", qos_profile_sensor_data)
        self.query = self.node.create_publisher(String, f"/{NODE}/query", latched)
        self.set_queries = self.node.create_client(SetQueries, f"/{NODE}/set_queries")
        self.set_parameters = self.node.create_client(SetParameters, f"{FQN}/set_parameters")
        # what arrived for the stamps a valid check waits for (kept bounded: a soak runs for hours)
        self.watched: set[int] = set()
        self.segmentations: dict[int, tuple[float, list[str]]] = {}  # stamp ns -> (receive time, its queries)
        self.arrays: dict[int, list[str]] = {}  # stamp ns -> the queries of its regions
        self.pending: list[tuple[object, str]] = []  # parameter futures and what was asked
        self.node.create_subscription(PartSegmentation, f"/{NODE}/segmentation", self._on_segmentation, reliable)
        self.node.create_subscription(AffordanceArray, f"/{NODE}/affordances", self._on_affordances, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        self.String, self.SetQueries, self.SetParameters = String, SetQueries, SetParameters
        from rclpy.parameter import Parameter

        self.Parameter = Parameter

    def _on_segmentation(self, msg) -> None:
        stamp = _stamp(msg.header)
        if stamp in self.watched:
            self.segmentations[stamp] = (time.monotonic(), list(msg.queries))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(f"{FQN}: "):
                self.tally.node.update({kv.key: kv.value for kv in status.values})

    def _on_affordances(self, msg) -> None:
        stamp = _stamp(msg.header)
        if stamp in self.watched:
            self.arrays[stamp] = [r.query for r in msg.regions]
        self.tally.arrays += 1
        hostile = stamp not in self.tally.valid_stamps
        for region in msg.regions:
            problem = region_implausibility(region, hostile)
            if problem:
                self.tally.implausible.append(f"{region.query}: {problem}")

    def spin(self, seconds: float = 0.0) -> None:
        end = time.monotonic() + seconds
        while True:
            self.executor.spin_once(timeout_sec=max(0.0, min(0.01, end - time.monotonic())))
            if time.monotonic() >= end:
                break
        self._collect_parameter_replies()

    def _collect_parameter_replies(self) -> None:
        still = []
        for future, what in self.pending:
            if not future.done():
                still.append((future, what))
            elif future.result() is not None and any(r.successful for r in future.result().results):
                self.tally.accepted_bad_parameters.append(what)
        self.pending = still[-100:]


def _stamp(header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def _set(header, stamp: int) -> None:
    header.stamp.sec, header.stamp.nanosec = divmod(stamp, 10**9)
    header.frame_id = FRAME_ID


class Stress:
    """One run: the hostile mix, the valid checks, the samples."""

    def __init__(self, client: StressClient, process: subprocess.Popen, log: Path, need_region: bool,
                 seed: int) -> None:
        from std_msgs.msg import Header

        from ..image_conversion import numpy_to_image
        from ..messages import camera_info_message

        self.client, self.process, self.log = client, process, log
        self.tally = client.tally
        self.need_region = need_region
        self.rng = np.random.default_rng(seed)
        self.scene = load_depth("kitchen")
        self.rgb = numpy_to_image(self.scene.rgb, "rgb8")
        self.valid_depth = numpy_to_image(self.scene.depth, "32FC1")
        self.valid_info = camera_info_message(self.scene.intrinsics, Header())
        self.small = np.ascontiguousarray(self.scene.rgb[::8, ::8])
        self.stamp = time.time_ns()
        self.kinds = [k for k, w in MIX for _ in range(w)]

    def next_stamp(self) -> int:
        self.stamp += 1_000_000_000  # 1 s apart: far beyond sync_slop, no frame pairs with another's depth
        return self.stamp

    def alive(self) -> bool:
        return self.process.poll() is None

    def hostile_step(self) -> None:
        """Send one hostile item (a 3D case counts as its depth, camera_info and colour frame)."""
        c, t = self.client, self.tally
        kind = self.kinds[int(self.rng.integers(len(self.kinds)))]
        t.kinds[kind] = t.kinds.get(kind, 0) + 1
        if kind in ("depth beside a frame", "camera_info beside a frame"):
            stamp = self.next_stamp()
            depth, info = self.valid_depth, self.valid_info
            if kind == "depth beside a frame":
                depth = _pick(DEPTH_CASES, self.rng)(self.scene.depth)
            else:
                info = _pick(CAMERA_INFO_CASES, self.rng)(self.scene.intrinsics)
            for publisher, msg in ((c.depth, depth), (c.info, info), (c.image, self.rgb)):
                _set(msg.header, stamp)
                publisher.publish(msg)
            t.sent += 3
            return
        if kind == "malformed depth":
            msg = _pick(MALFORMED_DEPTH, self.rng)(self.scene.depth)
            _set(msg.header, self.next_stamp())
            c.depth.publish(msg)
        elif kind == "malformed camera_info":
            msg = _pick(MALFORMED_CAMERA_INFO, self.rng)(self.scene.intrinsics)
            _set(msg.header, self.next_stamp())
            c.info.publish(msg)
        elif kind == "image":
            msg = _pick(IMAGE_CASES, self.rng)(self.small)
            _set(msg.header, self.next_stamp())
            c.image.publish(msg)
        elif kind == "query":
            text = (QUERY_CASES[int(self.rng.integers(len(QUERY_CASES)))] if self.rng.random() < 0.7
                    else random_query(self.rng))
            c.query.publish(c.String(data=text))
        elif kind == "set_queries":
            count = int(self.rng.integers(0, 40))
            c.set_queries.call_async(c.SetQueries.Request(queries=[random_query(self.rng) for _ in range(count)]))
        else:
            name, value = BAD_PARAMETERS[int(self.rng.integers(len(BAD_PARAMETERS)))]
            request = c.SetParameters.Request(parameters=[c.Parameter(name, value=value).to_parameter_msg()])
            c.pending.append((c.set_parameters.call_async(request), f"{name}={value!r}"))
        t.sent += 1

    def valid_check(self, timeout: float = 30.0) -> bool:
        """Restore the queries and send the valid frame, which must be answered (its segmentation and its
        AffordanceArray; with the bundled model holding the pot lid's region). A hostile query still in flight may
        overtake the restoring service call: then the answer has other queries and the check is repeated."""
        c, t = self.client, self.tally
        t.valid_sent += 1
        end = time.monotonic() + timeout
        c.spin(0.2)  # hostile queries sent just before land first
        while time.monotonic() < end and self.alive():
            future = c.set_queries.call_async(c.SetQueries.Request(queries=[VALID_QUERIES]))
            while not future.done() and time.monotonic() < end and self.alive():
                c.spin(0.01)
            answer = self._frame(end)
            if answer is None:
                break
            queries, regions, latency_ms = answer
            if queries != [VALID_QUERIES]:
                continue  # overtaken by a hostile query: restore and send again
            if self.need_region and VALID_QUERIES not in regions:
                t.unanswered.append(f"no {VALID_QUERIES} region: {len(regions)} regions")
                return False
            t.valid_answered += 1
            t.latencies.append(latency_ms)
            return True
        t.unanswered.append(f"no answer within {timeout:g} s" if self.alive() else "the node died")
        return False

    def _frame(self, end: float) -> tuple[list[str], list[str], float] | None:
        """Send the valid frame with a new stamp (again every second: best effort) until its segmentation and
        AffordanceArray arrive: (its queries, its regions' queries, latency ms), or None at ``end``."""
        c = self.client
        stamp = self.next_stamp()
        self.tally.valid_stamps.add(stamp)
        c.watched, c.segmentations, c.arrays = {stamp}, {}, {}
        sent_at = published = 0.0
        while time.monotonic() < end and self.alive():
            if time.monotonic() - published > 1.0:
                for publisher, msg in ((c.depth, self.valid_depth), (c.info, self.valid_info), (c.image, self.rgb)):
                    _set(msg.header, stamp)
                    publisher.publish(msg)
                published = time.monotonic()
                sent_at = sent_at or published
            c.spin(0.01)
            if stamp in c.segmentations and stamp in c.arrays:
                received, queries = c.segmentations[stamp]
                return queries, c.arrays[stamp], (received - sent_at) * 1e3
        return None

    def sample(self, start: float, since_latency: int) -> None:
        self.tally.samples.append(Sample(time.monotonic() - start, self.tally.sent, rss_mb(self.process.pid),
                                         statistics.mean(self.tally.latencies[since_latency:])
                                         if len(self.tally.latencies) > since_latency else None))

    def unhandled(self) -> int:
        text = self.log.read_text(errors="replace")
        return text.count("Traceback (most recent call last)") + text.count("unexpected error")


def _pick(cases: dict, rng: np.random.Generator):
    return list(cases.values())[int(rng.integers(len(cases)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope_mb_per_min(samples: list[Sample], skip_s: float) -> float | None:
    """Least-squares RSS slope over the samples after ``skip_s`` (warm-up), MB per minute; None when they span less
    than two minutes (a slope over seconds only measures the warm-up)."""
    points = [(s.seconds, s.rss_mb) for s in samples if s.seconds >= skip_s]
    if len(points) < 3 or points[-1][0] - points[0][0] < 120:
        return None
    x, y = np.array(points).T
    return float(np.polyfit(x / 60.0, y, 1)[0])


def start_node(weights: list[str], params: list[str], log: Path) -> subprocess.Popen:
    remaps = [arg for topic in ("image", "depth", "camera_info") for arg in ("-r", f"{topic}:={PREFIX}/{topic}")]
    command = [sys.executable, "-m", "partclipseg_ros.cli", "segment", *weights, "--queries", VALID_QUERIES,
               "--name", NODE, "--namespace", NODE, *remaps, *(arg for param in params for arg in ("-p", param))]
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)


def cmd_stress(args: argparse.Namespace) -> int:
    keep_dds_local()
    use_shm_profile()
    weights = (["--random-weights", args.random_weights] if args.random_weights else
               ["--checkpoint", args.checkpoint or str(BUNDLED_CHECKPOINT)])
    need_region = not args.random_weights and not args.checkpoint
    log = Path(args.log or tempfile.mkstemp(prefix="partclipseg-stress-", suffix=".log")[1])
    tally = Tally()
    client = StressClient(tally)
    process = start_node(weights, args.param, log)
    start = time.monotonic()
    crashed = False
    try:
        stress = Stress(client, process, log, need_region, args.seed)
        wait_end = time.monotonic() + 120
        while client.image.get_subscription_count() == 0 or client.depth.get_subscription_count() == 0:
            if time.monotonic() > wait_end or not stress.alive():
                raise RuntimeError(f"the node did not come up (exit status {process.poll()}); its log: {log}")
            client.spin(0.05)
        if not stress.valid_check(120):  # the first answer also waits for the model's first run
            raise RuntimeError(f"the node did not answer the first valid frame; its log: {log}")
        start = time.monotonic()
        stress.sample(start, 0)
        deadline = start + args.soak if args.soak else float("inf")
        period, next_send = 1.0 / args.rate, time.monotonic()
        next_sample, since_latency, since_check = start + args.sample_period, len(tally.latencies), 0
        while (tally.sent < args.messages if not args.soak else time.monotonic() < deadline):
            if not stress.alive():
                crashed = True
                break
            sent = tally.sent
            stress.hostile_step()
            since_check += tally.sent - sent
            if since_check >= args.check_every:
                stress.valid_check()
                since_check = 0
            next_send += period
            client.spin(max(0.0, next_send - time.monotonic()))
            if time.monotonic() >= next_sample:
                stress.sample(start, since_latency)
                since_latency, next_sample = len(tally.latencies), next_sample + args.sample_period
        if not crashed:
            stress.valid_check()  # the last word: the node still answers
            client.spin(2.5)  # its last /diagnostics
            stress.sample(start, since_latency)
        crashed = crashed or not stress.alive()
        unhandled = stress.unhandled()
    finally:
        client.close()
        if process.poll() is None:
            process.send_signal(2)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    elapsed = time.monotonic() - start
    print_report(args, tally, crashed, unhandled, elapsed, weights, log)
    ok = (not crashed and unhandled == 0 and tally.valid_answered == tally.valid_sent and not tally.implausible
          and not tally.accepted_bad_parameters)
    return 0 if ok else 1


def print_report(args: argparse.Namespace, tally: Tally, crashed: bool, unhandled: int, elapsed: float,
                 weights: list[str], log: Path) -> None:
    samples = tally.samples
    slope = slope_mb_per_min(samples, min(60.0, 0.1 * elapsed))
    latencies = sorted(tally.latencies)
    print(f"partclipseg-ros stress: {' '.join(weights)}; {tally.sent} messages in {elapsed:.0f} s (at most "
          f"{args.rate:g}/s), a valid frame every {args.check_every}; node log: {log}")
    if args.soak:
        print("\n| s | messages sent | node RSS (MB) | valid-frame latency (ms) |\n|---:|---:|---:|---:|")
        for s in samples:
            latency = f"{s.latency_ms:.0f}" if s.latency_ms is not None else "-"
            print(f"| {s.seconds:.0f} | {s.sent} | {s.rss_mb:.1f} | {latency} |")
    print("\n| messages sent | crashes | unhandled exceptions | valid frames answered | implausible regions "
          "published | bad parameters accepted | RSS start -> end (MB) | RSS slope (MB/min) | valid latency "
          "median / max (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rss = f"{samples[0].rss_mb:.0f} -> {samples[-1].rss_mb:.0f}" if samples else "-"
    slope_text = f"{slope:+.2f}" if slope is not None else "-"
    latency = f"{latencies[len(latencies) // 2]:.0f} / {latencies[-1]:.0f}" if latencies else "-"
    print(f"| {tally.sent} | {int(crashed)} | {unhandled} | {tally.valid_answered}/{tally.valid_sent} | "
          f"{len(tally.implausible)} | {len(tally.accepted_bad_parameters)} | {rss} | {slope_text} | {latency} |")
    node = tally.node
    print("\nmix: " + ", ".join(f"{kind} {n}" for kind, n in sorted(tally.kinds.items())))
    print(f"the node: {node.get('frames_processed', '?')} frames segmented, {node.get('frames_rejected', '?')} "
          f"refused, {node.get('frames_dropped', '?')} replaced by newer ones (latest frame only); 3D: "
          f"{node.get('frames_3d', '?')} frames, {node.get('frames_2d_only', '?')} in 2D only (3D inputs refused), "
          f"{node.get('parts_withheld', '?')} part regions withheld; {tally.arrays} AffordanceArrays received")
    for line in (tally.implausible[:5] + [f"accepted: {p}" for p in tally.accepted_bad_parameters[:5]]
                 + [f"valid frame not answered: {u}" for u in tally.unanswered[:5]]):
        print(f"  {line}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    stress = sub.add_parser("stress", help="hostile input at a bounded rate against the node; valid frames checked; "
                                           "--soak: memory and latency over time")
    stress.add_argument("--messages", type=int, default=10_000, help="hostile messages to send (without --soak)")
    stress.add_argument("--soak", type=float, help="run this many seconds instead of --messages")
    stress.add_argument("--rate", type=float, default=200.0, help="at most this many messages per second")
    stress.add_argument("--check-every", type=int, default=200, help="a valid frame after this many messages")
    stress.add_argument("--sample-period", type=float, default=10.0, help="seconds between RSS / latency samples")
    stress.add_argument("--checkpoint", help="weights for the node (default: the bundled model, whose valid-frame "
                                             "answers must hold the pot lid's region)")
    stress.add_argument("--random-weights", choices=RANDOM_SIZES, help="random weights for the node instead")
    stress.add_argument("--seed", type=int, default=0, help="seed of the hostile mix")
    stress.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="a node parameter (regions are still judged by the default limits)")
    stress.add_argument("--log", help="write the node's log here (default: a temporary file)")
    stress.set_defaults(func=cmd_stress)
