"""One camera of the segment node: its inputs (while active), its outputs, its statistics and the diagnosis of its
delivery. The node has one channel per name in ``cameras`` (topics ``<name>/image``, ``<name>/segmentation``, ...),
or one unnamed channel with the plain topic names (docs/ros.md, "Several cameras")."""
from __future__ import annotations

import os
import time
from typing import Callable

from rclpy.lifecycle import LifecycleNode
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from .camera_input import CameraInput, Frame, InputSettings, under
from .defaults import OUTPUT_DEPTH
from .delivery import DeliveryMonitor, DeliverySample
from .diagnostics import FrameStats, GeometryStats
from .msg import AffordanceArray, PartSegmentation

OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=OUTPUT_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
OUTPUTS = {"segmentation": PartSegmentation, "labels": Image, "overlay": Image, "affordances": AffordanceArray,
           "markers": MarkerArray, "part_cloud": PointCloud2}
OUTPUTS_3D = ("affordances", "markers", "part_cloud")  # the 3D stage runs while any of these has subscribers


class Channel:
    """A camera's topics (relative to the node's namespace, under ``name/`` when named) and state."""

    def __init__(self, node: LifecycleNode, name: str) -> None:
        self.node, self.name = node, name
        self.stats, self.geometry = FrameStats(), GeometryStats()
        self.publishers = {output: node.create_lifecycle_publisher(msg_type, self.topic(output), OUTPUT_QOS)
                           for output, msg_type in OUTPUTS.items()}
        self.camera: CameraInput | None = None
        self.delivery: list[DeliveryMonitor] = []
        self.delivery_logged: set[tuple[str, str]] = set()  # (kind, topic) logged once per activation
        self.last_part_without_3d = ""

    def topic(self, base: str) -> str:
        return under(self.name, base)

    def subscribers(self, *outputs: str) -> int:
        return sum(self.publishers[output].get_subscription_count() for output in outputs)

    def start(self, settings: InputSettings, on_frame: Callable[[Frame], None], report: Callable[[str], None]) -> None:
        """Subscribe the camera (at activate)."""
        self.camera = CameraInput(self.node, settings, on_frame, report, self.name)
        profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "")
        self.delivery = [DeliveryMonitor(sub.topic_name, profile) for sub in (self.camera.image, self.camera.depth)]
        self.delivery_logged.clear()

    def stop(self) -> None:
        """Unsubscribe (at deactivate)."""
        if self.camera is not None:
            self.camera.close()
        self.camera, self.delivery = None, []

    def close(self) -> None:
        """Unsubscribe and drop the publishers (at cleanup)."""
        self.stop()
        for publisher in self.publishers.values():
            self.node.destroy_lifecycle_publisher(publisher)
        self.publishers = {}

    def diagnose_delivery(self) -> list[tuple[str, str]]:
        """(key, message) of what keeps this camera's frames (and its depth, while 3D is wanted) from arriving;
        the key (kind and topic) is what the node logs once per activation."""
        camera = self.camera
        if camera is None:
            return []
        wants_3d = self.subscribers(*OUTPUTS_3D) > 0
        now, found = time.monotonic(), []
        for monitor, subscription, last in zip(self.delivery, (camera.image, camera.depth),
                                               (camera.last_frame, camera.last_depth)):
            sample = DeliverySample(now, subscription.received, subscription.lost, tuple(subscription.publishers()),
                                    subscription.reliability, now - (last or camera.started))
            diagnosis = monitor.diagnose(sample, required=subscription is camera.image or wants_3d)
            if diagnosis:
                found.append((f"{diagnosis[0]} {monitor.topic}", diagnosis[1]))
        return found
