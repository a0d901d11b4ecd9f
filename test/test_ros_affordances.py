"""The 3D stage of the segment node over real DDS: image + depth + camera_info in, AffordanceArray and markers out.

The node runs in its own process as users start it (`partclipseg-ros segment`), on the bundled Middlebury
motorcycle frame with its real depth (32FC1) and calibration; its numbers are compared with the core library's on
the same inputs.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
import rclpy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from ros_harness import AFFORDANCES, DepthCamera, Harness, segment_process, stamp_key, wait_for_log
from std_msgs.msg import Header, String
from visualization_msgs.msg import Marker

from partclipseg.affordances import load_affordances
from partclipseg.factory import open_model
from partclipseg.geometry.cloud import FLOAT32, UINT32, read_fields, read_xyz
from partclipseg.geometry.parts import GeometrySettings
from partclipseg.queries import parse_queries
from partclipseg.geometry.regions import affordance_regions
from partclipseg.data.samples import load_depth
from partclipseg.segmenter import Segmenter
from partclipseg_ros.image_conversion import numpy_to_image
from partclipseg_ros.messages import camera_info_message
from partclipseg_ros.segment_node import SegmentNode
from partclipseg_ros.srv import SetQueries

pytestmark = pytest.mark.ros
NODE = "seg_d"
PREFIX = "/test_d"
QUERIES = "motorbike/wheel; grasp:motorbike"  # -> motorbike/wheel, motorbike/handle (grasp)
# random weights: each query covers a random third of the scene, metres wide; this module compares the node's
# numbers with the core's, so both let regions that large through (test_ros_plausibility.py tests the limit)
MAX_PART_EXTENT = 10.0


@pytest.fixture(scope="module")
def harness():
    h = Harness("test_ros_affordances")
    yield h
    h.close()


@pytest.fixture(scope="module")
def node(harness, tmp_path_factory):
    process = segment_process(tmp_path_factory.mktemp("seg_d") / "node.log", NODE, QUERIES,
                              {topic: f"{PREFIX}/{topic}" for topic in ("image", "depth", "camera_info")},
                              {"max_part_extent": str(MAX_PART_EXTENT),
                               "backend": "torch"})  # compared with the torch core
    yield process
    assert process.stop() == 0, process.log()[-3000:]


@pytest.fixture(scope="module")
def camera(harness, node):
    cam = DepthCamera(harness, PREFIX, NODE)
    wait_for_log(harness, node, f"active: segmenting {PREFIX}/image")
    return cam


@pytest.fixture(scope="module")
def sample():
    return load_depth("motorcycle")  # 741x500 rgb8 + 32FC1 metres, Middlebury calibration


def depth_msg(sample, **header):
    return numpy_to_image(sample.depth, "32FC1", Header(**header))


def info_msg(sample):
    return camera_info_message(sample.intrinsics, Header())


@functools.cache
def core_segmenter() -> Segmenter:
    model, _ = open_model(None, "tiny")  # the node's weights: same seed, same tiny configuration
    return Segmenter(model)


def core_regions(sample, queries: str, depth: np.ndarray | None = None):
    segmenter = core_segmenter()
    segmenter.set_queries(parse_queries(queries, affordances=load_affordances()))
    result = segmenter.segment(sample.rgb)
    depth = sample.depth if depth is None else depth
    settings = GeometrySettings(max_part_extent=MAX_PART_EXTENT)
    regions, _ = affordance_regions(result.parts, result.labels, depth, sample.intrinsics, settings=settings)
    return regions


def affordances_status(harness, predicate, what, node, since=None):
    return harness.wait_status(NODE, predicate, 10, what, node, since, component=AFFORDANCES)


def test_affordances_equal_the_core_library_and_keep_the_source_header(harness, camera, node, sample):
    harness.wait(lambda: any(s.message.startswith("idle")
                             for s in harness.diagnostics), 10, "an idle 3D status before anyone subscribes", node)
    camera.watch_3d(affordances=True)
    segmentation, array = camera.frame(sample.rgb, depth_msg(sample), info_msg(sample), process=node)
    expected = core_regions(sample, QUERIES)

    assert array.header == segmentation.header and array.header.frame_id == "test_camera_optical_frame"
    assert [r.query for r in array.regions] == [r.query.name for r in expected] == ["motorbike/wheel",
                                                                                    "motorbike/handle"]
    for msg, want in zip(array.regions, expected):
        g = want.geometry
        assert (msg.object, msg.part, msg.affordance) == (want.query.object, want.query.part, want.affordance)
        assert msg.pose.header == array.header and msg.points.header == array.header
        position, q = msg.pose.pose.position, msg.pose.pose.orientation
        np.testing.assert_allclose([position.x, position.y, position.z], g.centroid, rtol=1e-12)
        np.testing.assert_allclose([q.x, q.y, q.z, q.w], g.quaternion, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose([msg.extent.x, msg.extent.y, msg.extent.z], g.extent, rtol=1e-12)
        assert msg.score == pytest.approx(want.score, rel=1e-6) and msg.point_count == g.point_count > 1000
        # the cloud: the standard unorganised xyz layout, and it reads back exactly
        cloud = msg.points
        assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
            ("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1)]
        assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (1, g.point_count, 12,
                                                                               12 * g.point_count)
        assert not cloud.is_bigendian and cloud.is_dense and len(cloud.data) == cloud.row_step
        points = read_xyz(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height,
                          cloud.is_bigendian, cloud.row_step)
        np.testing.assert_array_equal(points, g.points)
    assert expected[1].affordance == "grasp"
    values = affordances_status(harness, lambda v, s: int(v["frames_3d"]) >= 1, "3D diagnostics", node)
    assert values["depth_topic"] == f"{PREFIX}/depth" and values["output_frame"] == "the image's optical frame"


def test_part_cloud_is_the_regions_points_labelled(harness, camera, node, sample):
    """part_cloud: one labelled PointCloud2 per frame, the core's region points with label = query index + 1 and
    the region's score, in the output frame with the image's stamp; only while subscribed."""
    camera.watch_3d(affordances=True, part_cloud=True)
    try:
        segmentation, _ = camera.frame(sample.rgb, depth_msg(sample), info_msg(sample), process=node)
        stamp = stamp_key(segmentation)
        harness.wait(lambda: stamp in camera.clouds, 10, "the part cloud of that frame", node)
    finally:
        camera.watch_3d(affordances=True, part_cloud=False)
    later, _ = camera.frame(sample.rgb, depth_msg(sample), info_msg(sample), process=node)
    harness.spin_for(0.5)
    assert stamp_key(later) not in camera.clouds  # nobody subscribes part_cloud: none built
    cloud = camera.clouds[stamp]
    assert cloud.header == segmentation.header  # optical frame (no target_frame), the image's stamp
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == [
        ("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("label", 12, UINT32), ("score", 16, FLOAT32)]
    columns = read_fields(cloud.data, cloud.fields, ["x", "y", "z", "label", "score"], cloud.point_step,
                          cloud.width, cloud.height, cloud.is_bigendian, cloud.row_step)
    expected = core_regions(sample, QUERIES)
    labels = {q: i + 1 for i, q in enumerate(parse_queries(QUERIES, affordances=load_affordances()))}
    np.testing.assert_array_equal(np.stack([columns[n] for n in "xyz"], axis=1),
                                  np.concatenate([r.geometry.points for r in expected]))
    np.testing.assert_array_equal(columns["label"], np.concatenate(
        [np.full(r.geometry.point_count, labels[r.query]) for r in expected]))
    np.testing.assert_allclose(columns["score"], np.concatenate(
        [np.full(r.geometry.point_count, r.score) for r in expected]), rtol=1e-6)
    assert set(columns["label"].tolist()) == {1, 2} and cloud.width == sum(r.geometry.point_count for r in expected)


def test_16uc1_millimetres_give_the_same_regions(camera, node, sample):
    millimetres = np.round(sample.depth * 1000).astype(np.uint16)
    _, array = camera.frame(sample.rgb, numpy_to_image(millimetres, "16UC1"), info_msg(sample), process=node)
    want = core_regions(sample, QUERIES, millimetres)
    assert [r.point_count for r in array.regions] == [r.geometry.point_count for r in want]
    for msg, region in zip(array.regions, want):
        position = msg.pose.pose.position
        np.testing.assert_allclose([position.x, position.y, position.z], region.geometry.centroid, rtol=1e-12)
        np.testing.assert_allclose(position.z, np.median(sample.depth[sample.depth > 0]), rtol=0.3)  # metres


def _reactivate(harness, node):
    """Deactivate and activate: the depth and camera_info buffers start empty."""
    assert harness.transition(NODE, "deactivate", node) and harness.transition(NODE, "activate", node)


@pytest.mark.parametrize("case, phrase", [
    ("no camera_info yet", f"no camera_info received on {PREFIX}/camera_info yet"),
    ("no depth yet", f"no depth image received on {PREFIX}/depth yet"),
    ("stale depth", "closest in stamp to the image is 0.500 s older, beyond sync_slop 0.020 s"),
    ("depth size", "depth is 371x250 but the image is 741x500"),
    ("depth frame", "is in frame 'other_optical_frame' but the image in 'test_camera_optical_frame'"),
    ("uncalibrated", f"camera_info on {PREFIX}/camera_info cannot be used: camera intrinsics need finite fx, fy > 0"),
])
def test_unusable_depth_or_camera_info_gives_2d_only_a_warning_and_diagnostics(harness, camera, node, sample,
                                                                                 case, phrase):
    camera.watch_3d(affordances=True)
    depth, info, offset = depth_msg(sample), info_msg(sample), 0
    if case == "no camera_info yet":
        _reactivate(harness, node)
        info = None
    elif case == "no depth yet":
        _reactivate(harness, node)
        depth = None
    elif case == "stale depth":
        offset = -500_000_000
    elif case == "depth size":
        depth = numpy_to_image(np.ascontiguousarray(sample.depth[::2, ::2]), "32FC1")
    elif case == "depth frame":
        depth.header.frame_id = "other_optical_frame"
    elif case == "uncalibrated":
        info.k = [0.0] * 9
    statuses_from = len(harness.diagnostics)
    segmentation, _ = camera.frame(sample.rgb, depth, info, process=node, want_3d=False, depth_offset_ns=offset)
    stamp = camera.sent[-1]
    line = wait_for_log(harness, node, phrase)
    assert "WARN" in line and line.endswith("publishing 2D only"), line
    affordances_status(harness, lambda v, s: s.level == b"\x01"
                       and phrase in v["last_problem"] and phrase in s.message, "the problem in the 3D diagnostics",
                       node, statuses_from)
    assert len(segmentation.parts) == 2  # 2D still published
    harness.spin_for(0.3)
    assert stamp not in camera.affordances
    # the node keeps serving: the next good frame has 3D again
    _, array = camera.frame(sample.rgb, depth_msg(sample), info_msg(sample), process=node)
    assert len(array.regions) == 2


def test_sync_slop_is_a_run_time_parameter(harness, camera, node, sample):
    camera.watch_3d(affordances=True)
    assert harness.set_parameter(NODE, "sync_slop", 0.6).successful
    try:
        _, array = camera.frame(sample.rgb, depth_msg(sample), info_msg(sample), process=node,
                                depth_offset_ns=-500_000_000)
        assert len(array.regions) == 2  # the depth 0.5 s older than the image now pairs
    finally:
        assert harness.set_parameter(NODE, "sync_slop", 0.02).successful
    assert not harness.set_parameter(NODE, "axis_hint", [0.0, 0.0, 0.0]).successful
    assert not harness.set_parameter(NODE, "sync_queue", 10).successful  # read at activate


def test_markers_only_while_subscribed(harness, camera, node, sample):
    camera.watch_3d(affordances=True, markers=True)
    for _ in range(5):  # the node publishes markers once its publisher has matched our subscription
        camera.frame(sample.rgb, depth_msg(sample), info_msg(sample), process=node)
        stamp = camera.sent[-1]
        try:
            harness.wait(lambda: stamp in camera.markers, 3, "the markers of that frame", node)
            break
        except AssertionError:
            continue
    markers = camera.markers[stamp].markers
    regions = camera.affordances[stamp].regions
    assert markers[0].action == Marker.DELETEALL and len(markers) == 1 + 2 * len(regions)
    axes, label = markers[1], markers[2]
    assert all(m.header.frame_id == "test_camera_optical_frame" for m in markers)
    assert axes.type == Marker.LINE_LIST and len(axes.points) == 6 and len(axes.colors) == 6
    centroid = regions[0].pose.pose.position
    assert (axes.points[0].x, axes.points[0].y, axes.points[0].z) == (centroid.x, centroid.y, centroid.z)
    assert label.type == Marker.TEXT_VIEW_FACING and label.text.startswith("motorbike/wheel ")
    assert markers[4].text.startswith("motorbike/handle (grasp) ")

    camera.watch_3d(affordances=True, markers=False)
    camera.frame(sample.rgb, depth_msg(sample), info_msg(sample), process=node)  # lets the unsubscription settle
    harness.spin_for(0.3)
    before = affordances_status(harness, lambda v, s: True, "3D diagnostics", node)
    for _ in range(2):
        camera.frame(sample.rgb, depth_msg(sample), info_msg(sample), process=node)
    after = affordances_status(harness, lambda v, s: int(v["frames_3d"]) >= int(before["frames_3d"]) + 2,
                               "3D diagnostics", node)
    assert after["markers_published"] == before["markers_published"]


def test_affordance_requests_through_query_topic_and_service(harness, camera, node, sample):
    camera.watch_3d(affordances=True)
    camera.query.publish(String(data="grasp:motorbike"))
    wait_for_log(harness, node, f"queries from /{NODE}/query: motorbike/handle")
    _, array = camera.frame(sample.rgb, depth_msg(sample), info_msg(sample), process=node)
    assert [(r.query, r.affordance) for r in array.regions] == [("motorbike/handle", "grasp")]
    assert array.regions[0].point_count == core_regions(sample, "grasp:motorbike")[0].geometry.point_count

    reply = harness.call(SetQueries, f"/{NODE}/set_queries", SetQueries.Request(queries=["open:bottle", "knife"]))
    assert reply.success and list(reply.active_queries) == ["bottle/cap", "knife"]
    reply = harness.call(SetQueries, f"/{NODE}/set_queries", SetQueries.Request(queries=["fly:kite"]))
    assert not reply.success and "unknown affordance 'fly'" in reply.message
    reply = harness.call(SetQueries, f"/{NODE}/set_queries", SetQueries.Request(queries=[QUERIES]))
    assert reply.success and list(reply.active_queries) == ["motorbike/wheel", "motorbike/handle"]


def test_target_frame_without_tf2_fails_configure_with_the_reason():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = SegmentNode("seg_tf", context=context,
                           parameter_overrides=[Parameter("random_weights", value="tiny"),
                                                Parameter("target_frame", value="base_link")])
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.model_description == ""  # nothing loaded: the check comes before the model
        assert "target_frame 'base_link' needs tf2_ros" in node._configure_error
        assert "Leave target_frame empty" in node._configure_error
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
