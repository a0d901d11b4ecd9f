"""The segment node: a lifecycle node that segments the queried parts in every camera frame.

configure  loads the affordance vocabulary, TF for ``target_frame``, the model and its backend, applies ``queries``,
           creates the outputs, ``query`` and ``set_queries``; on a problem it fails with the reason and stays
           unconfigured, ready to be configured again.
activate   subscribes the camera (camera_input.py) and starts the latest-frame worker (latest_frame.py).
deactivate unsubscribes, stops the worker, drops the waiting frame and frees cached device memory.
cleanup    drops the model.

Every topic and service is relative to the node's namespace, so renaming the node changes none of them
(docs/ros.md, "Topics and services").
"""
from __future__ import annotations

import gc
import logging
import signal
import sys
import time
import traceback
from typing import Sequence

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rcl_interfaces.msg import SetParametersResult
from std_msgs.msg import Header, String

from partclipseg.affordances import AffordanceVocabulary, load_affordances
from partclipseg.backends import make_backend
from partclipseg.errors import EXPECTED_ERRORS, GeometryInputError, ImageError, NoQueries, QueryError
from partclipseg.factory import BackendFactory, open_segmenter
from partclipseg.geometry.plausibility import QUIET_KINDS
from partclipseg.geometry.regions import SkippedPart, affordance_regions
from partclipseg.model_vocabulary import describe as describe_vocabulary, unknown_warning
from partclipseg.overlay import RANDOM_BANNER, legend_lines, overlay
from partclipseg.postprocess import Result
from partclipseg.preprocess import as_rgb
from partclipseg.queries import PartQuery, parse_queries
from partclipseg.segmenter import Segmenter

from . import parameters
from .camera_input import Frame, InputSettings, reliability_name
from .channel import OUTPUTS_3D, Channel
from .defaults import LOG_THROTTLE_S, MEMORY_TRIM_PERIOD_S
from .depth_pairing import NoDepth
from .diagnostics import FrameStats, GeometryStats, Throttle, affordance_status, diagnostic_status
from .environment import use_shm_profile
from .image_conversion import numpy_to_image
from .messages import (
    affordance_array, clear_markers, empty_segmentation, part_cloud, region_markers, segmentation_message,
)
from .latest_frame import LatestFrameWorker
from .memory import release_free_memory
from .srv import SetQueries
from .tf_lookup import TfLookup, TransformUnavailable



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
        self._channels: dict[str, Channel] = {}  # one per camera, created at configure, released at cleanup
        self._query_sub = self._query_srv = None
        self._vocabulary: AffordanceVocabulary | None = None
        self._settings = self.params.geometry_settings()
        self._tf: TfLookup | None = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.params.diagnostics_period, self._publish_diagnostics)
        self.create_timer(MEMORY_TRIM_PERIOD_S, release_free_memory)  # RSS stays flat (memory.py)

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
            cameras = p.camera_list or [""]
            tf = TfLookup(self, p.target_frame) if p.target_frame else None
            with LibraryLog(self.get_logger()):  # first export and quality gate: progress in this log
                segmenter, description = open_segmenter(
                    p.weights(), p.backend, p.backend_options(), self._make_backend, mode=p.mode,
                    score_threshold=p.score_threshold, min_pixels=p.min_pixels, affordances=vocabulary)
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
        self._channels = {name: Channel(self, name) for name in cameras}
        self._query_sub = self.create_subscription(String, "query", self._on_query, QUERY_QOS)
        self._query_srv = self.create_service(SetQueries, "set_queries", self._on_set_queries)
        self._worker = LatestFrameWorker(self._process_batch, self._on_batch_error)
        self._state = "inactive"
        random = " (outputs are marked: masks are meaningless)" if p.random_weights else ""
        cameras = f"cameras {', '.join(self._channels)}; " if p.camera_list else ""
        choice = f" ({segmenter.backend.selection})" if segmenter.backend.selection else ""
        self.get_logger().info(f"configured: {self._model_description} ({self._vocabulary_description()}), backend "
                               f"{segmenter.backend.describe()}{choice}{random}; {cameras}queries: "
                               f"{self._query_names() or 'none yet (publish one on query)'}; 3D in "
                               f"{p.target_frame or 'the image optical frame'}")
        self._warn_unknown_queries()
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        p = self.params
        settings = InputSettings(p.image_transport, p.input_qos, p.input_depth, p.depth_qos, p.camera_info_qos,
                                 p.sync_queue)
        for channel in self._channels.values():
            channel.start(settings, self._on_frame, lambda message, c=channel: self._report(message, channel=c))
        self._worker.start()
        self._state = "active"
        for channel in self._channels.values():
            camera = channel.camera
            self.get_logger().info(
                f"active: segmenting {camera.image.topic_name} ({p.image_transport}, QoS {p.input_qos}: "
                f"{reliability_name(camera.image.reliability)} now, keep last {p.input_depth}); 3D from "
                f"{camera.depth.topic_name} + {camera.camera_info.topic_name} while affordances, markers or "
                "part_cloud has subscribers")
        return result

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
        for channel in self._channels.values():
            channel.stop()
        if self._worker is not None:
            self._worker.stop()

    def _release(self) -> None:
        self._stop_input()
        for channel in self._channels.values():
            channel.close()
        if self._query_sub is not None:
            self.destroy_subscription(self._query_sub)
            self.destroy_service(self._query_srv)
        self._channels, self._query_sub, self._query_srv = {}, None, None
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
    def _on_frame(self, frame: Frame) -> None:
        self._channels[frame.camera].stats.received()
        self._worker.submit(frame, frame.camera)

    def _report(self, message: str, rejected_frame: bool = False, channel: Channel | None = None) -> None:
        """A warning in the log (identical lines throttled) and in /diagnostics: of one camera, or of all (a query
        problem), or of the node while it has none (unconfigured)."""
        for stats in [channel.stats] if channel else [c.stats for c in self._channels.values()] or [self._stats]:
            stats.error(message, rejected_frame)
        line = self._throttle(message)
        if line is not None:
            self.get_logger().warning(line)

    def _report_2d_only(self, channel: Channel, key: str, message: str) -> None:
        """A frame without 3D: a warning (throttled per kind of problem) and the 3D diagnostics status."""
        channel.geometry.problem(message)
        line = self._throttle(message, f"{channel.name} {key}")
        if line is not None:
            self.get_logger().warning(line)

    # --- the worker thread -----------------------------------------------------------------------------------
    def _process_batch(self, frames: list[Frame]) -> list[bool]:
        """The newest frame of every waiting camera: encoded together (Segmenter.segment_batch) with the query set
        active when it starts, then published per camera. A failure of one frame is reported and never takes the
        others with it; returns which failed."""
        segmenter, p = self._segmenter, self.params
        failed = [False] * len(frames)
        if segmenter is None:
            return failed
        taken = []  # (index, frame, image, colour order)
        for index, frame in enumerate(frames):
            try:
                taken.append((index, frame, *frame.pixels()))
            except ImageError as exc:
                self._report(f"image on {frame.topic} rejected: {exc}", rejected_frame=True,
                             channel=self._channels[frame.camera])
                failed[index] = True
        if not taken:
            return failed
        try:
            results = segmenter.segment_batch([(image, order) for _, _, image, order in taken],
                                              objects=p.object_list or None)
        except NoQueries:
            results = [None] * len(taken)
        if not self.context.ok():
            return failed  # shut down (Ctrl-C) while the frames were in the model: nothing to publish to
        for (index, frame, image, order), result in zip(taken, results):
            try:
                self._publish(self._channels[frame.camera], frame, image, order, result)
            except Exception as exc:  # noqa: BLE001 - reported with the reason; the other cameras go on
                self._on_frame_error(frame, exc)
                failed[index] = True
        return failed

    def _on_batch_error(self, frames: list[Frame], exc: Exception) -> None:
        for frame in frames:
            self._on_frame_error(frame, exc)

    def _publish(self, channel: Channel, frame: Frame, image: np.ndarray, color_order: str,
                 result: Result | None) -> None:
        """A segmented frame's outputs on its camera's topics (an empty segmentation while no query is active)."""
        p = self.params
        height, width = image.shape[:2]
        if result is None:
            message, model_ms = empty_segmentation(height, width, frame.header), 0.0
        else:
            message, model_ms = segmentation_message(result, frame.header), sum(result.timings.values())
        channel.publishers["segmentation"].publish(message)
        channel.publishers["labels"].publish(message.labels)
        stamp = frame.header.stamp
        latency_ms = (self.get_clock().now().nanoseconds - (stamp.sec * 10**9 + stamp.nanosec)) / 1e6
        channel.stats.published(latency_ms, model_ms)
        if p.overlay and channel.subscribers("overlay") > 0:
            legend = legend_lines(result.parts) if result else []
            labels = result.labels if result else np.zeros((height, width), dtype=np.uint8)
            banner = RANDOM_BANNER if p.random_weights else None
            drawn = overlay(as_rgb(image, color_order), labels, legend, banner=banner)
            channel.publishers["overlay"].publish(numpy_to_image(drawn, "rgb8", frame.header))
        self._publish_3d(channel, frame, result)

    def _publish_3d(self, channel: Channel, frame: Frame, result: Result | None) -> None:
        """affordances, markers and part_cloud of a segmented frame, while someone subscribes one of them (lazy)."""
        to_array, to_markers, to_cloud = (channel.subscribers(name) > 0 for name in OUTPUTS_3D)
        if not (to_array or to_markers or to_cloud):
            return
        out = Header(stamp=frame.header.stamp, frame_id=self._tf.target_frame if self._tf else frame.header.frame_id)
        found = self._regions(channel, frame, result) if result is not None else None
        if found is None:  # no active queries, or a frame without usable depth: old markers must go
            if to_markers:
                channel.publishers["markers"].publish(clear_markers(out))
                channel.geometry.markers_only()
            return
        regions, start = found
        if to_array:
            channel.publishers["affordances"].publish(affordance_array(regions, frame.header, out))
        if to_markers:
            channel.publishers["markers"].publish(region_markers(regions, out))
        if to_cloud:
            channel.publishers["part_cloud"].publish(part_cloud(regions, {p.query: p.label for p in result.parts},
                                                                out))
        channel.geometry.published((time.perf_counter() - start) * 1e3, to_markers)

    def _regions(self, channel: Channel, frame: Frame, result: Result) -> tuple[list, float] | None:
        """The frame's regions in the output frame and when their computation started (the wait for depth
        excluded); None after reporting why the frame has no 3D."""
        p = self.params
        try:
            inputs = channel.camera.pairing.inputs(frame.header, frame.pairings, p.sync_slop,
                                                   frame.received + p.sync_wait, p.depth_scale)
            start = time.perf_counter()
            regions, skipped = affordance_regions(result.parts, result.labels, inputs.depth, inputs.intrinsics,
                                                  inputs.depth_scale, self._settings, p.publish_unknown_3d)
            if self._tf is not None:
                rigid = self._tf.lookup(frame.header, p.tf_timeout)
                regions = [rigid.region(region) for region in regions]
        except NoDepth as exc:
            self._report_2d_only(channel, exc.key, str(exc))
            return None
        except (GeometryInputError, TransformUnavailable) as exc:
            key = "tf" if isinstance(exc, TransformUnavailable) else "geometry input"
            self._report_2d_only(channel, key, f"{exc}; publishing 2D only")
            return None
        self._report_withheld(channel, skipped)
        return regions, start

    def _report_withheld(self, channel: Channel, skipped: list[SkippedPart]) -> None:
        """Parts found in 2D without a 3D region this frame: the last one in the 3D diagnostics, and for the
        kinds that mean untrustworthy inputs or masks (not a speck, not an unknown query: warned per query set) a
        warning throttled per kind, and the reason as the 3D status."""
        for part in skipped:
            channel.last_part_without_3d = f"{part.query.name}: {part.reason}"
            if part.kind not in QUIET_KINDS:
                where = f" in {channel.name}" if channel.name else ""
                message = f"no 3D region for {part.query.name}{where} ({part.kind}): {part.reason}"
                channel.geometry.withheld(message)
                line = self._throttle(message, f"{channel.name} 3D {part.kind}")
                if line is not None:
                    self.get_logger().warning(line)

    def _on_frame_error(self, frame: Frame, exc: Exception) -> None:
        if not self.context.ok():
            return  # stopped (Ctrl-C) while the frame was in the model
        channel = self._channels.get(frame.camera)
        if isinstance(exc, EXPECTED_ERRORS):
            self._report(f"frame {frame.header.frame_id!r} not segmented: {exc}", rejected_frame=True,
                         channel=channel)
        else:
            self._report(f"frame {frame.header.frame_id!r} not segmented, unexpected error: {exc!r}\n"
                         f"{traceback.format_exc()}", rejected_frame=True, channel=channel)

    # --- queries ---------------------------------------------------------------------------------------------
    def _query_names(self) -> str:
        return "; ".join(q.name for q in self._segmenter.queries) if self._segmenter else ""

    def _vocabulary_description(self) -> str:
        model = self._segmenter.model if self._segmenter else None
        return describe_vocabulary(model.vocabulary, model.trained_classes) if model else ""

    def _unknown_message(self) -> str:
        """The warning for the active queries a closed-vocabulary model never learned ('' when there are none)."""
        unknown = self._segmenter.unknown_queries if self._segmenter else []
        if not unknown:
            return ""
        allowed = ("their 3D regions are published, flagged unknown_query (publish_unknown_3d)"
                   if self.params.publish_unknown_3d else
                   "no 3D regions for them (set publish_unknown_3d to publish them flagged)")
        return (f"{unknown_warning(unknown, self._segmenter.model.trained_classes)}; their masks are flagged "
                f"unknown_query and {allowed}")

    def _warn_unknown_queries(self) -> None:
        """Once per query set: the queries the model never learned."""
        message = self._unknown_message()
        if message:
            self.get_logger().warning(message)

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
        self._warn_unknown_queries()
        if sync_parameter:
            self.set_parameters([Parameter("queries", value=self._query_names())])
        return True, message

    def _on_query(self, msg: String) -> None:
        self._apply_queries(msg.data, self._query_sub.topic_name)

    def _on_set_queries(self, request: SetQueries.Request, response: SetQueries.Response) -> SetQueries.Response:
        text = "; ".join(q for q in request.queries if q.strip())
        response.success, response.message = self._apply_queries(text, self._query_srv.srv_name)
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
        statuses = []
        for channel in list(self._channels.values()) or [None]:
            statuses += [self._segmentation_status(channel), self._affordance_status(channel)]
        self._diagnostics_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                      status=statuses))

    def _status_name(self, channel: Channel | None, component: str) -> str:
        camera = f"{channel.name}: " if channel is not None and channel.name else ""
        return f"{self.get_fully_qualified_name()}: {camera}{component}"

    def _segmentation_status(self, channel: Channel | None):
        """One camera's part segmentation status (the node's, with no camera, while unconfigured)."""
        window = (channel.stats if channel else self._stats).snapshot()
        level, message = DiagnosticStatus.OK, self._state
        if self._configure_error:
            level, message = DiagnosticStatus.ERROR, f"unconfigured, {self._configure_error}"
        elif self._state == "active":
            message = (f"active: {window.input_hz:.1f} Hz in, {window.output_hz:.1f} Hz out, "
                       f"latency {window.latency_ms_mean:.0f} ms")
            if self._segmenter is not None and self._segmenter.plan is None:
                message += ", no active queries"
        delivery = self._diagnose_delivery(channel) if channel and self._state == "active" else ""
        if delivery:
            level, message = DiagnosticStatus.WARN, delivery
        if level == DiagnosticStatus.OK and 0 <= window.last_error_age_s <= window.seconds:
            level, message = DiagnosticStatus.WARN, window.last_error
        camera = channel.camera if channel else None
        unknown = self._unknown_message()
        if level == DiagnosticStatus.OK and unknown:
            level, message = DiagnosticStatus.WARN, unknown
        values = {
            "state": self._state,
            "camera": channel.name if channel else "",
            "model": self._model_description,
            "backend": self._segmenter.backend.describe() if self._segmenter else "",
            "backend_choice": (self._segmenter.backend.selection or "as configured") if self._segmenter else "",
            "random_weights": str(bool(self.params.random_weights)).lower(),
            "active_queries": self._query_names(),
            "vocabulary": self._vocabulary_description(),
            "unknown_queries": "; ".join(q.name for q in self._segmenter.unknown_queries) if self._segmenter else "",
            "input_topic": camera.image.topic_name if camera else "",
            "input_transport": self.params.image_transport,
            "input_qos": f"{self.params.input_qos}, depth {self.params.input_depth}",
            "input_reliability": reliability_name(camera.image.reliability) if camera else "",
            "input_publishers": ", ".join(reliability_name(r) for r in camera.image.publishers()) if camera else "",
            "frames_lost_in_transport": str(camera.image.lost) if camera else "0",
            "delivery": delivery,
        }
        worker = self._worker.counts(channel.name) if self._worker and channel else None
        return diagnostic_status(self._status_name(channel, "part segmentation"), self.get_name(), level, message,
                                 window, worker, values)

    def _affordance_status(self, channel: Channel | None):
        """One camera's 3D stage status."""
        window = (channel.geometry if channel else GeometryStats()).snapshot()
        level, message = DiagnosticStatus.OK, self._state
        if self._state == "active" and channel is not None:
            message = (f"{window.frames_3d} frames with 3D in {window.seconds:.1f} s" if channel.subscribers(*OUTPUTS_3D)
                       else "idle: nobody subscribes affordances, markers or part_cloud")
        if 0 <= window.last_problem_age_s <= window.seconds:
            level, message = DiagnosticStatus.WARN, window.last_problem
        pairing, p = channel.camera.pairing if channel and channel.camera else None, self.params
        values = {
            "depth_topic": pairing.depth_topic if pairing else "",
            "camera_info_topic": pairing.camera_info_topic if pairing else "",
            "depth_received": str(pairing.depth.received) if pairing else "0",
            "camera_info_received": str(pairing.camera_info.received) if pairing else "0",
            "output_frame": p.target_frame or "the image's optical frame",
            "sync_slop_s": f"{p.sync_slop:g}",
            "last_part_without_3d": channel.last_part_without_3d if channel else "",
            "depth_range_m": f"{p.depth_min:g}-{p.depth_max:g}",
            "max_part_extent_m": f"{p.max_part_extent:g}",
        }
        return affordance_status(self._status_name(channel, "affordances"), self.get_name(), level, message,
                                 window, values)

    def _diagnose_delivery(self, channel: Channel) -> str:
        """What keeps a camera's frames (and depth) from arriving, logged once per kind and topic; '' when
        nothing does."""
        found = channel.diagnose_delivery()
        for key, text in found:
            if key not in channel.delivery_logged:
                channel.delivery_logged.add(key)
                self.get_logger().warning(text)
        return " | ".join(text for _, text in found)

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
        # a terminal's Ctrl-C reaches the node and ros2 launch, which sends its own SIGINT: the second one must not
        # break the clean-up (the frame in the model finishes, publishers are destroyed)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
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
