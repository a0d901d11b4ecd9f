"""One camera's inputs: the image (raw or compressed), its depth and camera_info, with subscriptions whose
reliability follows the publishers, and the delivery counts that tell whether frames are lost on the way
(docs/ros.md, "Inputs and transport")."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from rclpy.event_handler import QoSMessageLostInfo, QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_policy_name_from_kind
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from .compressed import COMPRESSED, COMPRESSED_DEPTH, decode_image
from .defaults import FOLLOW_PUBLISHERS, QOS_REFRESH_S
from .depth_pairing import DepthPairing, FramePairings
from .image_conversion import image_to_numpy

FIXED_RELIABILITY = {
    "sensor_data": ReliabilityPolicy.BEST_EFFORT,
    "reliable": ReliabilityPolicy.RELIABLE,
    "system_default": ReliabilityPolicy.SYSTEM_DEFAULT,
}
TRANSPORTS = ("raw", "compressed")


@dataclass(frozen=True)
class Frame:
    header: Header
    camera: str  # its channel's name ('' for the single default camera)
    topic: str  # where it came from
    message: Image | CompressedImage  # converted (raw) or decoded (compressed) by the worker: only frames it takes
    pairings: FramePairings  # its depth and camera_info, resolved by the worker
    received: float  # time.monotonic() at arrival

    def pixels(self) -> tuple[np.ndarray, str]:
        """The image as an array and its colour order; raises ImageError with the reason."""
        if isinstance(self.message, CompressedImage):
            return decode_image(self.message)
        return image_to_numpy(self.message)


def follow_publishers(reliabilities: list[ReliabilityPolicy]) -> ReliabilityPolicy:
    """Reliable when there are publishers and every one is reliable, else best effort (which matches any)."""
    if reliabilities and all(r == ReliabilityPolicy.RELIABLE for r in reliabilities):
        return ReliabilityPolicy.RELIABLE
    return ReliabilityPolicy.BEST_EFFORT


class FollowingSubscription:
    """A volatile keep-last subscription whose reliability is fixed (``sensor_data``, ``reliable``,
    ``system_default``) or follows the publishers on its topic (``best_available``), re-evaluated by
    :meth:`refresh` when they come and go. Counts received and lost messages (the middleware's lost-sample events)."""

    def __init__(self, node: LifecycleNode, msg_type: type, topic: str, callback: Callable[[Any], None], choice: str,
                 depth: int, parameter: str, report: Callable[[str], None]) -> None:
        self.node, self.msg_type, self.depth = node, msg_type, depth
        self.topic_name = node.resolve_topic_name(topic)
        self.choice, self.parameter, self._report, self._callback = choice, parameter, report, callback
        self.received = self.lost = 0
        self.reliability = self._wanted()
        self._subscription = self._create()

    def publishers(self) -> list[ReliabilityPolicy]:
        """The reliability of each publisher on the topic."""
        return [info.qos_profile.reliability for info in self.node.get_publishers_info_by_topic(self.topic_name)]

    def _wanted(self) -> ReliabilityPolicy:
        return follow_publishers(self.publishers()) if self.choice == FOLLOW_PUBLISHERS else \
            FIXED_RELIABILITY[self.choice]

    def _create(self):
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.depth, reliability=self.reliability,
                         durability=DurabilityPolicy.VOLATILE)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible, message_lost=self._on_lost)
        return self.node.create_subscription(self.msg_type, self.topic_name, self._on_message, qos,
                                             event_callbacks=events)

    def _on_message(self, msg: Any) -> None:
        self.received += 1
        self._callback(msg)

    def _on_lost(self, info: QoSMessageLostInfo) -> None:
        self.lost += info.total_count_change

    def _on_incompatible(self, info: QoSRequestedIncompatibleQoSInfo) -> None:
        if self.choice == FOLLOW_PUBLISHERS:
            return  # the next refresh follows the new publisher
        policy = qos_policy_name_from_kind(info.last_policy_kind)
        self._report(f"a publisher on {self.topic_name} has an incompatible {policy} QoS, so no messages arrive "
                     f"from it; this node subscribes with {self.parameter}={self.choice}: set {self.parameter} to "
                     f"{FOLLOW_PUBLISHERS!r} (follows the publisher) or to match it")

    def refresh(self) -> None:
        """Follow the publishers: re-create the subscription when their reliability asks for another one."""
        if self.choice != FOLLOW_PUBLISHERS:
            return
        wanted = self._wanted()
        if wanted == self.reliability:
            return
        self.node.destroy_subscription(self._subscription)
        self.reliability = wanted
        self._subscription = self._create()
        self.node.get_logger().info(f"{self.topic_name}: subscribed {reliability_name(wanted)}, following its "
                                    "publisher(s)")

    def destroy(self) -> None:
        self.node.destroy_subscription(self._subscription)


def reliability_name(policy: ReliabilityPolicy) -> str:
    return {ReliabilityPolicy.RELIABLE: "reliable", ReliabilityPolicy.BEST_EFFORT: "best effort"}.get(
        policy, policy.name.lower())


def under(prefix: str, base: str) -> str:
    """A camera's topic: ``prefix/base``, or ``base`` for the unnamed camera."""
    return f"{prefix}/{base}" if prefix else base


@dataclass(frozen=True)
class InputSettings:
    """The parameters that shape one camera's subscriptions (read at activate)."""

    transport: str
    image_qos: str
    image_depth: int
    depth_qos: str
    camera_info_qos: str
    sync_queue: int


class CameraInput:
    """The image, depth and camera_info subscriptions of one camera, relative to the node's namespace (``image``,
    ``depth``, ``camera_info``, under ``prefix/`` when given; with ``transport`` compressed: ``image/compressed``
    and ``depth/compressedDepth``, as image_transport names them). Each image becomes a :class:`Frame` handed to
    ``on_frame``."""

    def __init__(self, node: LifecycleNode, settings: InputSettings, on_frame: Callable[[Frame], None],
                 report: Callable[[str], None], prefix: str = "") -> None:
        self.settings, self.prefix = settings, prefix
        compressed = settings.transport == COMPRESSED
        image_topic = node.resolve_topic_name(under(prefix, "image")) + (f"/{COMPRESSED}" if compressed else "")
        depth_topic = node.resolve_topic_name(under(prefix, "depth")) + (f"/{COMPRESSED_DEPTH}" if compressed else "")
        image_type = CompressedImage if compressed else Image
        self._on_frame = on_frame
        self.image = FollowingSubscription(node, image_type, image_topic, self._on_image, settings.image_qos,
                                           settings.image_depth, "input_qos", report)
        self.depth = FollowingSubscription(node, image_type, depth_topic, self._on_depth, settings.depth_qos,
                                           settings.sync_queue, "depth_qos", report)
        self.camera_info = FollowingSubscription(node, CameraInfo, under(prefix, "camera_info"), self._on_camera_info,
                                                 settings.camera_info_qos, settings.sync_queue, "camera_info_qos",
                                                 report)
        self.pairing = DepthPairing(settings.sync_queue, self.depth.topic_name, self.camera_info.topic_name)
        self.started = time.monotonic()
        self.last_frame: float | None = None  # monotonic time of the last image, and of the last depth image
        self.last_depth: float | None = None
        self._timer = node.create_timer(QOS_REFRESH_S, self.refresh)
        self._node = node

    @property
    def subscriptions(self) -> tuple[FollowingSubscription, ...]:
        return (self.image, self.depth, self.camera_info)

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.last_frame = time.monotonic()
        self._on_frame(Frame(msg.header, self.prefix, self.image.topic_name, msg, self.pairing.pair(msg.header),
                             self.last_frame))

    def _on_depth(self, msg: Image | CompressedImage) -> None:
        self.last_depth = time.monotonic()
        self.pairing.add_depth(msg)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.pairing.add_camera_info(msg)

    def refresh(self) -> None:
        for subscription in self.subscriptions:
            subscription.refresh()

    def close(self) -> None:
        self._node.destroy_timer(self._timer)
        for subscription in self.subscriptions:
            subscription.destroy()
        self.pairing.clear()
