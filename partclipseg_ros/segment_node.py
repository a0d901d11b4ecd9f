"""The segment node: a lifecycle node that segments the queried parts in every camera frame.

configure  loads the affordance vocabulary, sets up TF for ``target_frame``, loads the model (``checkpoint`` or
           ``random_weights``) and the backend, applies ``queries``, creates the publishers, ``~/query``
           (transient_local) and ``~/set_queries``. On a problem (no weights, no tf2_ros for a target_frame, ...)
           it fails with the reason and stays unconfigured, ready to be configured again.
activate   subscribes ``image``, ``depth`` and ``camera_info`` and starts the worker thread (latest frame only, see
           pipeline.py).
deactivate unsubscribes, stops the worker, drops the waiting frame and frees cached device memory.
cleanup    drops the model.

Per frame the worker segments, publishes the 2D outputs, and then, while someone subscribes ``~/affordances`` or
``~/markers``, pairs the frame with its depth and camera_info (depth_pairing.py) and publishes the 3D regions.
"""
from __future__ import annotations

import gc
import logging
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_policy_name_from_kind
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from partclipseg.affordances import AffordanceVocabulary, load_affordances
from partclipseg.backends import make_backend
from partclipseg.errors import EXPECTED_ERRORS, GeometryInputError, ImageError, QueryError
from partclipseg.factory import BackendFactory, open_segmenter
from partclipseg.geometry.regions import affordance_regions
from partclipseg.overlay import overlay
from partclipseg.postprocess import Result
from partclipseg.preprocess import as_rgb
from partclipseg.queries import PartQuery, parse_queries
from partclipseg.segmenter import Segmenter

from . import parameters
from .defaults import LOG_THROTTLE_S, NO_INPUT_WARNING_S, OUTPUT_DEPTH
from .depth_pairing import DepthPairing, FramePairings, NoDepth
from .diagnostics import FrameStats, GeometryStats, Throttle, affordance_status, diagnostic_status
from .environment import use_shm_profile
from .image_conversion import image_to_numpy, numpy_to_image
from .messages import affordance_array, clear_markers, empty_segmentation, region_markers, segmentation_message
from .msg import AffordanceArray, PartSegmentation
from .latest_frame import LatestFrameWorker
from .srv import SetQueries
from .tf_lookup import TfLookup, TransformUnavailable

RANDOM_BANNER = "RANDOM WEIGHTS - masks are meaningless"


class LibraryLog(logging.Handler):
    """The core library's progress lines and warnings (first export, quality gate, backend choice) in the node's
    log, and only there."""

    def __init__(self, logger) -> None:
        super().__init__(logging.INFO)
        self._logger = logger
        self._library = logging.getLogger("partclipseg")

    def __enter__(self) -> "LibraryLog":
        self._level = self._library.level
        self._library.addHandler(self)
        self._library.setLevel(logging.INFO)
        self._library.propagate = False
        return self

    def __exit__(self, *exc) -> None:
        self._library.removeHandler(self)
        self._library.setLevel(self._level)
        self._library.propagate = True

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name}: {record.getMessage()}"
        if record.levelno >= logging.WARNING:  # one call site per severity: rclpy refuses a site that changes it
            self._logger.warning(text)
        else:
            self._logger.info(text)


@dataclass(frozen=True)
class Frame:
    header: Header
    image: np.ndarray  # read-only view of the message data
    color_order: str
    pairings: FramePairings  # its depth and camera_info, resolved by the worker
    received: float  # time.monotonic() at arrival


_RELIABILITY = {
    "sensor_data": ReliabilityPolicy.BEST_EFFORT,
    "reliable": ReliabilityPolicy.RELIABLE,
    "system_default": ReliabilityPolicy.SYSTEM_DEFAULT,
}


def subscription_qos(reliability: str, depth: int) -> QoSProfile:
    """An input subscription's QoS: ``reliability`` as in ``input_qos``, keep last ``depth``, volatile."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=_RELIABILITY[reliability],
                      durability=DurabilityPolicy.VOLATILE)


OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=OUTPUT_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
QUERY_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)


class SegmentNode(LifecycleNode):
    """Lifecycle node ``partclipseg`` (see the module docstring). ``make_backend`` picks the backend by name."""

    def __init__(self, node_name: str = "partclipseg", *, make_backend: BackendFactory = make_backend,
                 **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._make_backend = make_backend
        self.params = parameters.declare(self)
        self._state = "unconfigured"
        self._stats = FrameStats()
        self._throttle = Throttle(LOG_THROTTLE_S)
        self._configure_error = ""
        self._segmenter: Segmenter | None = None
        self._model_description = ""
        self._worker: LatestFrameWorker[Frame] | None = None
        self._image_sub = self._depth_sub = self._camera_info_sub = None
        self._pairing: DepthPairing | None = None  # depth + camera_info of this activation
        self._active_since = 0.0
        self._outputs: list = []  # created at configure, destroyed at cleanup
        self._query_sub = self._query_srv = None
        self._vocabulary: AffordanceVocabulary | None = None
        self._settings = self.params.geometry_settings()
        self._tf: TfLookup | None = None
        self._geometry_stats = GeometryStats()
        self._last_part_without_3d = ""
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.params.diagnostics_period, self._publish_diagnostics)

    @property
    def model_description(self) -> str:
        """One line about the loaded weights ('' while unconfigured)."""
        return self._model_description

    # --- lifecycle -------------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.params
        tf = None
        try:
            if p.mode == "oracle" and not p.object_list:
                raise ValueError("mode 'oracle' needs the objects present: set the 'objects' parameter")
            vocabulary = load_affordances(p.affordances_file or None)
            queries = parse_queries(p.queries, p.max_queries, affordances=vocabulary) if p.queries.strip() else None
            tf = TfLookup(self, p.target_frame) if p.target_frame else None
            with LibraryLog(self.get_logger()):  # first export and quality gate: progress in this log
                segmenter, description = open_segmenter(
                    p.weights(), p.backend, p.backend_options(), self._make_backend, mode=p.mode,
                    score_threshold=p.score_threshold, min_pixels=p.min_pixels)
            if queries:
                segmenter.set_queries(queries)
        except Exception as exc:  # noqa: BLE001 - a failed configure must leave the node up and unconfigured
            if tf is not None:
                tf.close()
            expected = isinstance(exc, EXPECTED_ERRORS + (TransformUnavailable,))
            detail = "" if expected else "\n" + traceback.format_exc()
            self._configure_error = f"configure failed: {exc}"
            self._stats.error(self._configure_error)
            self.get_logger().error(f"{self._configure_error}{detail}\nThe node stays unconfigured: fix the "
                                    "parameters and configure it again.")
            return TransitionCallbackReturn.FAILURE
        self._configure_error = ""
        self._segmenter, self._model_description = segmenter, description
        self._vocabulary, self._tf = vocabulary, tf
        self._segmentation_pub = self.create_lifecycle_publisher(PartSegmentation, "~/segmentation", OUTPUT_QOS)
        self._labels_pub = self.create_lifecycle_publisher(Image, "~/labels", OUTPUT_QOS)
        self._overlay_pub = self.create_lifecycle_publisher(Image, "~/overlay", OUTPUT_QOS)
        self._affordances_pub = self.create_lifecycle_publisher(AffordanceArray, "~/affordances", OUTPUT_QOS)
        self._markers_pub = self.create_lifecycle_publisher(MarkerArray, "~/markers", OUTPUT_QOS)
        self._outputs = [self._segmentation_pub, self._labels_pub, self._overlay_pub, self._affordances_pub,
                         self._markers_pub]
        self._query_sub = self.create_subscription(String, "~/query", self._on_query, QUERY_QOS)
        self._query_srv = self.create_service(SetQueries, "~/set_queries", self._on_set_queries)
        self._worker = LatestFrameWorker(self._process, self._on_frame_error)
        self._state = "inactive"
        random = " (outputs are marked: masks are meaningless)" if p.random_weights else ""
        choice = f" ({segmenter.backend.selection})" if segmenter.backend.selection else ""
        self.get_logger().info(f"configured: {self._model_description}, backend {segmenter.backend.describe()}"
                               f"{choice}{random}; "
                               f"queries: {self._query_names() or 'none yet (publish one on ~/query)'}; 3D in "
                               f"{p.target_frame or 'the image optical frame'}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        p = self.params
        self._image_sub = self._subscribe(Image, "image", self._on_image, "input_qos",
                                          subscription_qos(p.input_qos, p.input_depth))
        self._depth_sub = self._subscribe(Image, "depth", self._on_depth, "depth_qos",
                                          subscription_qos(p.depth_qos, p.sync_queue))
        self._camera_info_sub = self._subscribe(CameraInfo, "camera_info", self._on_camera_info, "camera_info_qos",
                                                subscription_qos(p.camera_info_qos, p.sync_queue))
        self._pairing = DepthPairing(p.sync_queue, self._depth_sub.topic_name, self._camera_info_sub.topic_name)
        self._worker.start()
        self._active_since = time.monotonic()
        self._state = "active"
        self.get_logger().info(f"active: segmenting {self._image_sub.topic_name} "
                               f"(QoS {p.input_qos}, depth {p.input_depth}); 3D from {self._depth_sub.topic_name} + "
                               f"{self._camera_info_sub.topic_name} while ~/affordances or ~/markers has subscribers")
        return result

    def _subscribe(self, msg_type, topic: str, callback, qos_parameter: str, qos: QoSProfile):
        """A subscription whose QoS mismatches are reported with the parameter that sets its QoS."""
        name = self.resolve_topic_name(topic)
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda info: self._on_incompatible_qos(info, name, qos_parameter))
        return self.create_subscription(msg_type, topic, callback, qos, event_callbacks=events)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self._state = "inactive"
        self._free_device_cache()
        self.get_logger().info("inactive: input unsubscribed, worker stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("unconfigured: model released")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state = "finalized"
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Stop the worker and release everything (before destroy_node at process exit)."""
        self._release()

    def _stop_input(self) -> None:
        for subscription in (self._image_sub, self._depth_sub, self._camera_info_sub):
            if subscription is not None:
                self.destroy_subscription(subscription)
        self._image_sub = self._depth_sub = self._camera_info_sub = None
        if self._worker is not None:
            self._worker.stop()
        if self._pairing is not None:
            self._pairing.clear()

    def _release(self) -> None:
        self._stop_input()
        for publisher in self._outputs:
            self.destroy_lifecycle_publisher(publisher)
        if self._query_sub is not None:
            self.destroy_subscription(self._query_sub)
            self.destroy_service(self._query_srv)
        self._outputs, self._query_sub, self._query_srv = [], None, None
        if self._tf is not None:
            self._tf.close()
        self._segmenter, self._vocabulary, self._tf = None, None, None
        self._worker = None
        self._model_description = ""
        self._state = "unconfigured"
        self._free_device_cache()

    def _free_device_cache(self) -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # --- input -----------------------------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        self._stats.received()
        try:
            image, color_order = image_to_numpy(msg)
        except ImageError as exc:
            self._report(f"image on {self._image_sub.topic_name} rejected: {exc}", rejected_frame=True)
            return
        self._worker.submit(Frame(msg.header, image, color_order, self._pairing.pair(msg.header), time.monotonic()))

    def _on_depth(self, msg: Image) -> None:
        self._pairing.add_depth(msg)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._pairing.add_camera_info(msg)

    def _on_incompatible_qos(self, info: QoSRequestedIncompatibleQoSInfo, topic: str, qos_parameter: str) -> None:
        policy = qos_policy_name_from_kind(info.last_policy_kind)
        value = getattr(self.params, qos_parameter)
        self._report(f"a publisher on {topic} has an incompatible {policy} QoS, so no messages arrive from it; this "
                     f"node subscribes with {qos_parameter}={value}: set {qos_parameter} to match the publisher "
                     "('sensor_data', best effort, accepts every publisher)")

    def _report(self, message: str, rejected_frame: bool = False) -> None:
        """A warning in the log (identical lines throttled) and in /diagnostics."""
        self._stats.error(message, rejected_frame)
        line = self._throttle(message)
        if line is not None:
            self.get_logger().warning(line)

    def _report_2d_only(self, key: str, message: str) -> None:
        """A frame without 3D: a warning (throttled per kind of problem) and the 3D diagnostics status."""
        self._geometry_stats.problem(message)
        line = self._throttle(message, key)
        if line is not None:
            self.get_logger().warning(line)

    # --- the worker thread -----------------------------------------------------------------------------------
    def _process(self, frame: Frame) -> None:
        segmenter, p = self._segmenter, self.params
        if segmenter is None:
            return
        height, width = frame.image.shape[:2]
        if segmenter.plan is None:
            message, result, model_ms = empty_segmentation(height, width, frame.header), None, 0.0
        else:
            result = segmenter.segment(frame.image, frame.color_order, objects=p.object_list or None)
            message, model_ms = segmentation_message(result, frame.header), sum(result.timings.values())
        self._segmentation_pub.publish(message)
        self._labels_pub.publish(message.labels)
        stamp = frame.header.stamp
        latency_ms = (self.get_clock().now().nanoseconds - (stamp.sec * 10**9 + stamp.nanosec)) / 1e6
        self._stats.published(latency_ms, model_ms)
        if p.overlay and self._overlay_pub.get_subscription_count() > 0:
            legend = [f"{part.query.name} {part.score:.2f}" for part in result.parts] if result else []
            labels = result.labels if result else np.zeros((height, width), dtype=np.uint8)
            banner = RANDOM_BANNER if p.random_weights else None
            drawn = overlay(as_rgb(frame.image, frame.color_order), labels, legend, banner=banner)
            self._overlay_pub.publish(numpy_to_image(drawn, "rgb8", frame.header))
        self._publish_3d(frame, result)

    def _publish_3d(self, frame: Frame, result: Result | None) -> None:
        """~/affordances and ~/markers of a segmented frame, while someone subscribes either (lazy)."""
        to_array = self._affordances_pub.get_subscription_count() > 0
        to_markers = self._markers_pub.get_subscription_count() > 0
        if not (to_array or to_markers):
            return
        out = Header(stamp=frame.header.stamp, frame_id=self._tf.target_frame if self._tf else frame.header.frame_id)
        found = self._regions(frame, result) if result is not None else None
        if found is None:  # no active queries, or a frame without usable depth: old markers must go
            if to_markers:
                self._markers_pub.publish(clear_markers(out))
                self._geometry_stats.markers_only()
            return
        regions, start = found
        if to_array:
            self._affordances_pub.publish(affordance_array(regions, frame.header, out))
        if to_markers:
            self._markers_pub.publish(region_markers(regions, out))
        self._geometry_stats.published((time.perf_counter() - start) * 1e3, to_markers)

    def _regions(self, frame: Frame, result: Result) -> tuple[list, float] | None:
        """The frame's regions in the output frame and when their computation started (the wait for depth
        excluded); None after reporting why the frame has no 3D."""
        p = self.params
        try:
            inputs = self._pairing.inputs(frame.header, frame.pairings, p.sync_slop, frame.received + p.sync_wait,
                                          p.depth_scale)
            start = time.perf_counter()
            regions, skipped = affordance_regions(result.parts, result.labels, inputs.depth, inputs.intrinsics,
                                                  inputs.depth_scale, self._settings)
            if self._tf is not None:
                rigid = self._tf.lookup(frame.header, p.tf_timeout)
                regions = [rigid.region(region) for region in regions]
        except NoDepth as exc:
            self._report_2d_only(exc.key, str(exc))
            return None
        except (GeometryInputError, TransformUnavailable) as exc:
            key = "tf" if isinstance(exc, TransformUnavailable) else "geometry input"
            self._report_2d_only(key, f"{exc}; publishing 2D only")
            return None
        if skipped:
            self._last_part_without_3d = f"{skipped[-1].query.name}: {skipped[-1].reason}"
        return regions, start

    def _on_frame_error(self, frame: Frame, exc: Exception) -> None:
        if isinstance(exc, EXPECTED_ERRORS):
            self._report(f"frame {frame.header.frame_id!r} not segmented: {exc}", rejected_frame=True)
        else:
            self._report(f"frame {frame.header.frame_id!r} not segmented, unexpected error: {exc!r}\n"
                         f"{traceback.format_exc()}", rejected_frame=True)

    # --- queries ---------------------------------------------------------------------------------------------
    def _query_names(self) -> str:
        return "; ".join(q.name for q in self._segmenter.queries) if self._segmenter else ""

    def _parse(self, text: str, params: parameters.NodeParameters | None = None) -> list[PartQuery]:
        """The one parser with the affordance vocabulary ("grasp:knife"): the loaded one, else ``params``' file."""
        params = params or self.params
        vocabulary = self._vocabulary or load_affordances(params.affordances_file or None)
        return parse_queries(text, params.max_queries, affordances=vocabulary)

    def _apply_queries(self, text: str, source: str, sync_parameter: bool = True) -> tuple[bool, str]:
        """Activate the queries in ``text`` ('' clears them); on bad input keep the active ones."""
        if not text.strip():
            self._segmenter.clear_queries()
            message = f"queries cleared ({source}): publishing empty segmentations until a query arrives"
        else:
            try:
                self._segmenter.set_queries(self._parse(text))
            except QueryError as exc:
                message = (f"query {text[:80]!r} from {source} rejected: {exc}; "
                           f"still active: {self._query_names() or 'none'}")
                self._report(message)
                return False, message
            message = f"queries from {source}: {self._query_names()}"
        self.get_logger().info(message)
        if sync_parameter:
            self.set_parameters([Parameter("queries", value=self._query_names())])
        return True, message

    def _on_query(self, msg: String) -> None:
        self._apply_queries(msg.data, "~/query")

    def _on_set_queries(self, request: SetQueries.Request, response: SetQueries.Response) -> SetQueries.Response:
        text = "; ".join(q for q in request.queries if q.strip())
        response.success, response.message = self._apply_queries(text, "~/set_queries")
        response.active_queries = [q.name for q in self._segmenter.queries] if self._segmenter else []
        return response

    def _on_set_parameters(self, changes: Sequence[Parameter]) -> SetParametersResult:
        for change in changes:
            reason = parameters.refusal(change, self._state)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        new = self.params.with_changes(changes)
        if new.mode == "oracle" and not new.object_list:
            return SetParametersResult(successful=False,
                                       reason="mode 'oracle' needs the objects present: set 'objects' too")
        try:
            settings = new.geometry_settings()
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        segmenter = self._segmenter
        if new.queries != self.params.queries:
            if segmenter is None:
                try:
                    self._parse(new.queries, new) if new.queries.strip() else None
                except (QueryError, ValueError) as exc:  # AffordanceError: the vocabulary file is bad
                    return SetParametersResult(successful=False, reason=str(exc))
            elif new.queries != self._query_names():
                ok, message = self._apply_queries(new.queries, "parameter queries", sync_parameter=False)
                if not ok:
                    return SetParametersResult(successful=False, reason=message)
        if segmenter is not None:
            segmenter.mode = new.mode
            segmenter.score_threshold = new.score_threshold
            segmenter.min_pixels = new.min_pixels
        self.params, self._settings = new, settings
        return SetParametersResult(successful=True)

    # --- diagnostics -----------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        window = self._stats.snapshot()
        level, message = DiagnosticStatus.OK, self._state
        if self._configure_error:
            level, message = DiagnosticStatus.ERROR, f"unconfigured, {self._configure_error}"
        elif self._state == "active":
            message = (f"active: {window.input_hz:.1f} Hz in, {window.output_hz:.1f} Hz out, "
                       f"latency {window.latency_ms_mean:.0f} ms")
            if self._segmenter is not None and self._segmenter.plan is None:
                message += ", no active queries"
            if time.monotonic() - (self._stats.last_input_time or self._active_since) > NO_INPUT_WARNING_S:
                level, message = DiagnosticStatus.WARN, self._no_input_message()
                self._report(message)
        if level == DiagnosticStatus.OK and 0 <= window.last_error_age_s <= window.seconds:
            level, message = DiagnosticStatus.WARN, window.last_error
        values = {
            "state": self._state,
            "model": self._model_description,
            "backend": self._segmenter.backend.describe() if self._segmenter else "",
            "backend_choice": (self._segmenter.backend.selection or "as configured") if self._segmenter else "",
            "random_weights": str(bool(self.params.random_weights)).lower(),
            "active_queries": self._query_names(),
            "input_topic": self._image_sub.topic_name if self._image_sub else "",
            "input_qos": f"{self.params.input_qos}, depth {self.params.input_depth}",
        }
        worker = self._worker.counts() if self._worker else None
        status = diagnostic_status(f"{self.get_fully_qualified_name()}: part segmentation", self.get_name(), level,
                                   message, window, worker, values)
        self._diagnostics_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                      status=[status, self._affordance_status()]))

    def _affordance_status(self):
        window = self._geometry_stats.snapshot()
        level, message = DiagnosticStatus.OK, self._state
        if self._state == "active":
            consumers = self._affordances_pub.get_subscription_count() + self._markers_pub.get_subscription_count()
            message = (f"{window.frames_3d} frames with 3D in {window.seconds:.1f} s" if consumers else
                       "idle: nobody subscribes ~/affordances or ~/markers")
        if 0 <= window.last_problem_age_s <= window.seconds:
            level, message = DiagnosticStatus.WARN, window.last_problem
        pairing, p = self._pairing, self.params
        values = {
            "depth_topic": pairing.depth_topic if pairing else "",
            "camera_info_topic": pairing.camera_info_topic if pairing else "",
            "depth_received": str(pairing.depth.received) if pairing else "0",
            "camera_info_received": str(pairing.camera_info.received) if pairing else "0",
            "output_frame": p.target_frame or "the image's optical frame",
            "sync_slop_s": f"{p.sync_slop:g}",
            "last_part_without_3d": self._last_part_without_3d,
        }
        return affordance_status(f"{self.get_fully_qualified_name()}: affordances", self.get_name(), level, message,
                                 window, values)

    def _no_input_message(self) -> str:
        topic = self._image_sub.topic_name
        publishers = self.count_publishers(topic)
        why = (f"no publisher on {topic}: remap 'image' to the camera topic" if publishers == 0 else
               f"{publishers} publisher(s) on {topic} but no frames: check that their QoS is compatible with "
               f"input_qos={self.params.input_qos}")
        return f"no image for more than {NO_INPUT_WARNING_S:.0f} s; {why}"


def run(node: SegmentNode, autostart: bool) -> int:
    """Spin ``node`` until shutdown (Ctrl-C); with ``autostart`` configure and activate it first."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        if autostart and node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=node.context)
    return 0


def main(argv: Sequence[str] | None = None, make_backend: BackendFactory = make_backend) -> int:
    """``ros2 run partclipseg_ros segment_node [--ros-args ...]``: the node, unconfigured (launch drives it)."""
    use_shm_profile()
    rclpy.init(args=list(sys.argv if argv is None else argv))
    return run(SegmentNode(make_backend=make_backend), autostart=False)


if __name__ == "__main__":
    sys.exit(main())
