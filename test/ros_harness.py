"""Test helpers for real rclpy over real DDS: a test-side node with bounded waits, and node processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from partclipseg_ros.image_conversion import numpy_to_image
from partclipseg_ros.msg import AffordanceArray, PartSegmentation

REPO = Path(__file__).resolve().parent.parent
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SEGMENTATION, AFFORDANCES = "part segmentation", "affordances"  # the node's two diagnostics statuses
TRANSITIONS = {name: getattr(Transition, f"TRANSITION_{name.upper()}")
               for name in ("configure", "activate", "deactivate", "cleanup", "unconfigured_shutdown")}


def child_env() -> dict[str, str]:
    """The test's environment (DDS domain, localhost discovery) with this checkout first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0", RCUTILS_LOGGING_BUFFERED_STREAM="0")
    return env


class NodeProcess:
    """A node in its own process; its log (stdout + stderr) goes to a file."""

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str | None] | None = None) -> None:
        """``env`` adds to the test's environment; a None value removes that variable."""
        self.log_path = log_path
        self._log = open(log_path, "w")
        environment = {key: value for key, value in {**child_env(), **(env or {})}.items() if value is not None}
        self.process = subprocess.Popen([sys.executable, *args], cwd=REPO, env=environment, stdout=self._log,
                                        stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self, timeout: float = 20.0) -> int:
        """Ctrl-C, as a user would; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def slow_segment_process(log: Path, name: str, image_topic: str, delay: float, *params: str) -> NodeProcess:
    """test/slow_segment_node.py: the node with its model slowed by ``delay`` s per frame, tiny random weights,
    queries cup/handle, node ``name`` in namespace ``name``, input on ``image_topic``, unconfigured; further
    ``params`` as name:=value."""
    param_args = [arg for param in ("random_weights:=tiny", "queries:=cup/handle", *params) for arg in ("-p", param)]
    return NodeProcess(["test/slow_segment_node.py", "--ros-args", "-r", f"__node:={name}", "-r", f"__ns:=/{name}",
                        "-r", f"image:={image_topic}", *param_args], log, env={"SLOW_NODE_DELAY_S": str(delay)})


def segment_process(log: Path, name: str, queries: str, remaps: dict[str, str],
                    params: dict[str, str] | None = None, checkpoint: Path | None = None) -> NodeProcess:
    """`partclipseg-ros segment` as users start it (the shipped config), with tiny random weights (or
    ``checkpoint``), ``queries``, the inputs remapped by ``remaps``, diagnostics every 0.2 s and further ``params``;
    node ``name`` in namespace ``name`` (so its topics are /name/..., its services and parameters /name/name/...).
    Nodes whose output a test compares with the torch core bit for bit pass ``{"backend": "torch"}`` (the shipped
    default, auto, runs ONNX Runtime)."""
    remap_args = [f"{topic}:={target}" for topic, target in remaps.items()]
    param_args = [arg for key, value in (params or {}).items() for arg in ("-p", f"{key}:={value}")]
    weights = ["--checkpoint", str(checkpoint)] if checkpoint else ["--random-weights", "tiny"]
    return NodeProcess(["-m", "partclipseg_ros.cli", "segment", *weights, "--queries", queries,
                        "--name", name, "--namespace", name, *remap_args, "-p", "diagnostics_period:=0.2",
                        *param_args], log)


def fqn(node: str) -> str:
    """The full name of a test node started as node ``node`` in namespace ``node``."""
    return f"/{node}/{node}"


class Harness:
    """A test-side node and executor; every wait is bounded and says what it waited for."""

    def __init__(self, name: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.diagnostics: list[DiagnosticStatus] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics",
                                      lambda m: self.diagnostics.extend(m.status), RELIABLE)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=max(0.0, min(0.05, end - time.monotonic())))

    def wait(self, condition: Callable[[], Any], timeout: float, what: str, process: NodeProcess | None = None):
        """Spin until ``condition()`` is truthy and return its value; fail with ``what`` (and the node's log)."""
        end = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > end:
                log = f"\n--- node log ---\n{process.log()[-4000:]}" if process else ""
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{log}")
            if process is not None and process.process.poll() is not None:
                raise AssertionError(f"node process exited ({process.process.returncode}) while waiting for "
                                     f"{what}\n--- node log ---\n{process.log()[-4000:]}")
            self.executor.spin_once(timeout_sec=0.05)

    def call(self, service_type, name: str, request, timeout: float = 30.0, process: NodeProcess | None = None):
        client = self.node.create_client(service_type, name)
        try:
            self.wait(lambda: client.service_is_ready(), timeout, f"service {name}", process)
            future = client.call_async(request)
            return self.wait(lambda: future.done() and future.result(), timeout, f"a reply from {name}", process)
        finally:
            self.node.destroy_client(client)

    def transition(self, node: str, name: str, process: NodeProcess | None = None) -> bool:
        request = ChangeState.Request()
        request.transition.id = TRANSITIONS[name]
        return self.call(ChangeState, f"{fqn(node)}/change_state", request, process=process).success

    def state(self, node: str) -> str:
        return self.call(GetState, f"{fqn(node)}/get_state", GetState.Request()).current_state.label

    def set_parameter(self, node: str, name: str, value: Any):
        """The SetParametersResult of one remote parameter change."""
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.call(SetParameters, f"{fqn(node)}/set_parameters", request).results[0]

    def get_parameter(self, node: str, name: str) -> Any:
        return self.get_parameter_of(fqn(node), name)

    def get_parameter_of(self, full_name: str, name: str) -> Any:
        """A parameter of the node ``full_name`` (e.g. /robot1/partclipseg)."""
        reply = self.call(GetParameters, f"{full_name}/get_parameters", GetParameters.Request(names=[name]))
        return parameter_value_to_python(reply.values[0])

    def latest_status(self, node: str, component: str = SEGMENTATION) -> DiagnosticStatus | None:
        for status in reversed(self.diagnostics):
            if status.name == f"{fqn(node)}: {component}":
                return status
        return None

    def wait_status(self, node: str, predicate: Callable[[dict[str, str], DiagnosticStatus], bool], timeout: float,
                    what: str, process: NodeProcess | None = None, since: int | None = None,
                    component: str = SEGMENTATION) -> dict[str, str]:
        """Wait for a /diagnostics status ``/<node>: <component>`` (received from now on, or from index ``since`` of
        ``self.diagnostics``) that satisfies ``predicate``."""
        start = len(self.diagnostics) if since is None else since

        def match():
            for status in self.diagnostics[start:]:
                if status.name == f"{fqn(node)}: {component}":
                    values = {kv.key: kv.value for kv in status.values}
                    if predicate(values, status):
                        return values
            return None

        return self.wait(match, timeout, what, process)


class Camera:
    """Publishes frames (best effort, depth 1, like a camera driver) and collects the node's segmentations."""

    def __init__(self, harness: Harness, image_topic: str, node: str, camera: str = "") -> None:
        """``node``: the test node's name (= its namespace); ``camera``: its camera's name when it has several."""
        self.harness = harness
        self.node_name = node
        self.publisher = harness.node.create_publisher(Image, image_topic, qos_profile_sensor_data)
        self.query = harness.node.create_publisher(String, f"/{node}/query", LATCHED)
        self.results: dict[int, tuple[PartSegmentation, float]] = {}  # stamp ns -> (message, receive time)
        self.order: list[int] = []  # answered stamps, in arrival order
        self.sent: list[int] = []  # published stamps
        outputs = f"/{node}/{camera}" if camera else f"/{node}"
        harness.node.create_subscription(PartSegmentation, f"{outputs}/segmentation", self._on_result, RELIABLE)
        self._stamp = 1_000_000_000

    def _on_result(self, msg: PartSegmentation) -> None:
        key = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self.results[key] = (msg, time.monotonic())
        self.order.append(key)

    def next_stamp(self) -> int:
        self._stamp += 1_000_000
        return self._stamp

    def publish(self, image: np.ndarray | Image | CompressedImage, encoding: str = "rgb8", stamp_ns: int | None = None,
                frame_id: str = "test_camera_optical_frame") -> int:
        msg = image if isinstance(image, (Image, CompressedImage)) else numpy_to_image(image, encoding)
        stamp_ns = self.next_stamp() if stamp_ns is None else stamp_ns
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
        msg.header.frame_id = frame_id
        self.publisher.publish(msg)
        self.sent.append(stamp_ns)
        return stamp_ns

    def segment(self, image: np.ndarray | Image, encoding: str = "rgb8", timeout: float = 30.0,
                process: NodeProcess | None = None) -> PartSegmentation:
        """Publish one frame (again every second until the node answers it) and return the answer."""
        self.harness.wait(lambda: self.publisher.get_subscription_count() > 0, timeout,
                          f"the node to subscribe {self.publisher.topic_name}", process)
        stamp = self.publish(image, encoding)
        last = time.monotonic()

        def answered():
            nonlocal last
            if time.monotonic() - last > 1.0:  # best effort: a frame can be replaced or lost; send it again
                self.publish(image, encoding, stamp)
                last = time.monotonic()
            return self.results.get(stamp)

        return self.harness.wait(answered, timeout, f"the segmentation of frame {stamp}", process)[0]


def wait_for_log(harness: Harness, process: NodeProcess, text: str, timeout: float = 30.0) -> str:
    """Wait for ``text`` in the node's log; returns the first log line holding it."""
    harness.wait(lambda: text in process.log(), timeout, f"log line containing {text!r}", process)
    return next(line for line in process.log().splitlines() if text in line)


class DepthCamera(Camera):
    """A colour camera with an aligned depth image (32FC1 or 16UC1) and camera_info, stamped alike; collects the
    node's AffordanceArrays and MarkerArrays by stamp (subscribe with :meth:`watch_3d`)."""

    def __init__(self, harness: Harness, prefix: str, node: str) -> None:
        super().__init__(harness, f"{prefix}/image", node)
        self.depth_publisher = harness.node.create_publisher(Image, f"{prefix}/depth", qos_profile_sensor_data)
        self.info_publisher = harness.node.create_publisher(CameraInfo, f"{prefix}/camera_info",
                                                            qos_profile_sensor_data)
        self.affordances: dict[int, AffordanceArray] = {}
        self.markers: dict[int, MarkerArray] = {}
        self.clouds: dict[int, PointCloud2] = {}
        self.subscriptions: dict[str, Any] = {}

    def next_stamp(self) -> int:
        """Frames 1 s apart: far beyond sync_slop, so a frame never pairs with another frame's depth."""
        self._stamp += 1_000_000_000
        return self._stamp

    def watch_3d(self, affordances: bool = True, markers: bool = False, part_cloud: bool = False) -> None:
        """Subscribe (or unsubscribe) affordances, markers and part_cloud: the node computes 3D only for
        subscribers."""
        for name, msg_type, store, wanted in (("affordances", AffordanceArray, self.affordances, affordances),
                                              ("markers", MarkerArray, self.markers, markers),
                                              ("part_cloud", PointCloud2, self.clouds, part_cloud)):
            if wanted and name not in self.subscriptions:
                self.subscriptions[name] = self.harness.node.create_subscription(
                    msg_type, f"/{self.node_name}/{name}", lambda m, s=store: s.__setitem__(stamp_key(m), m),
                    RELIABLE)
            elif not wanted and name in self.subscriptions:
                self.harness.node.destroy_subscription(self.subscriptions.pop(name))

    def frame(self, image: np.ndarray, depth: Image | None, info: CameraInfo | None, timeout: float = 30.0,
              process: NodeProcess | None = None, want_3d: bool = True,
              depth_offset_ns: int = 0) -> tuple[PartSegmentation, AffordanceArray | None]:
        """Publish depth and camera_info (when given), then the image, all with one new stamp (depth shifted by
        ``depth_offset_ns``), again every second until the node answers; with ``want_3d`` also wait for the
        AffordanceArray of that stamp."""
        self.harness.wait(lambda: self.publisher.get_subscription_count() > 0, timeout,
                          f"the node to subscribe {self.publisher.topic_name}", process)
        stamp = self.next_stamp()
        frame_id = "test_camera_optical_frame"

        def send() -> None:
            for publisher, msg, offset in ((self.depth_publisher, depth, depth_offset_ns),
                                           (self.info_publisher, info, 0)):
                if msg is not None:
                    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp + offset, 10**9)
                    msg.header.frame_id = msg.header.frame_id or frame_id
                    publisher.publish(msg)
            self.publish(image, stamp_ns=stamp, frame_id=frame_id)

        send()
        last = time.monotonic()

        def answered():
            nonlocal last
            if time.monotonic() - last > 1.0:  # best effort: a frame can be replaced or lost; send it again
                send()
                last = time.monotonic()
            return stamp in self.results and (not want_3d or stamp in self.affordances)

        self.harness.wait(answered, timeout, f"the answer to frame {stamp}", process)
        return self.results[stamp][0], self.affordances.get(stamp)


def stamp_key(msg) -> int:
    """A message's stamp in ns (a MarkerArray's from its first marker)."""
    header = msg.markers[0].header if isinstance(msg, MarkerArray) else msg.header
    return header.stamp.sec * 10**9 + header.stamp.nanosec
