"""What the node vouches for, over real DDS: the issue's table of hostile depth and camera_info (each beside a valid
colour frame), NaN/inf/negative/zero depth, and queries a closed-vocabulary model never learned. The node runs the
bundled model in its own process (`partclipseg-ros segment --checkpoint kitchen-tiny.pth`) on the rendered kitchen
scene, whose pot lid it finds with a plausible 3D region (0.26 m away); every bad input must give no region for
that frame, a warning saying what was wrong, the reason in the `affordances` diagnostics, and the 2D output.
"""
from __future__ import annotations

import numpy as np
import pytest
import rclpy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from ros_harness import AFFORDANCES, DepthCamera, Harness, NodeProcess, wait_for_log
from std_msgs.msg import Header

from partclipseg.data.samples import load_depth
from partclipseg.defaults import BUNDLED_CHECKPOINT
from partclipseg_ros.hostile_inputs import CAMERA_INFO_CASES, DEPTH_CASES, big_endian_depth
from partclipseg_ros.image_conversion import numpy_to_image
from partclipseg_ros.messages import camera_info_message
from partclipseg_ros.segment_node import SegmentNode
from partclipseg_ros.srv import SetQueries

pytestmark = pytest.mark.ros
NODE = "seg_p"
PREFIX = "/test_p"
WARN = b"\x01"


@pytest.fixture(scope="module")
def harness():
    h = Harness("test_ros_plausibility")
    yield h
    h.close()


@pytest.fixture(scope="module")
def node(harness, tmp_path_factory):
    remaps = [arg for topic in ("image", "depth", "camera_info") for arg in ("-r", f"{topic}:={PREFIX}/{topic}")]
    process = NodeProcess(["-m", "partclipseg_ros.cli", "segment", "--checkpoint", str(BUNDLED_CHECKPOINT),
                           "--queries", "pot/lid", "--name", NODE, "--namespace", NODE, *remaps,
                           "-p", "diagnostics_period:=0.2"],
                          tmp_path_factory.mktemp("seg_p") / "node.log")
    yield process
    assert process.stop() == 0, process.log()[-3000:]


@pytest.fixture(scope="module")
def kitchen():
    return load_depth("kitchen")  # 640x480, depth 0.23-0.69 m, the bundled model's pot lid at 0.26 m


@pytest.fixture(scope="module")
def camera(harness, node):
    cam = DepthCamera(harness, PREFIX, NODE)
    wait_for_log(harness, node, f"active: segmenting {PREFIX}/image", timeout=60)
    cam.watch_3d(affordances=True)
    return cam


def good_frame(camera, node, kitchen, depth=None):
    depth = numpy_to_image(kitchen.depth, "32FC1") if depth is None else depth
    return camera.frame(kitchen.rgb, depth, camera_info_message(kitchen.intrinsics, Header()), process=node)


def test_a_valid_frame_has_a_plausible_region(camera, node, kitchen):
    segmentation, array = good_frame(camera, node, kitchen)
    assert [(r.query, r.unknown_query) for r in array.regions] == [("pot/lid", False)]
    assert 0.2 < array.regions[0].pose.pose.position.z < 0.4 and array.regions[0].extent.z < 0.5
    assert not segmentation.parts[0].unknown_query


def test_big_endian_depth_is_honoured(camera, node, kitchen):
    """Depth really sent big-endian (data and flag agree) gives the same region as little-endian."""
    _, little = good_frame(camera, node, kitchen)
    _, big = good_frame(camera, node, kitchen, big_endian_depth(kitchen.depth))
    assert [r.point_count for r in big.regions] == [r.point_count for r in little.regions] != []
    assert big.regions[0].pose.pose.position == little.regions[0].pose.pose.position


# the case's phrase in the warning and the `affordances` status, and whether the frame still gets an (empty)
# AffordanceArray (the part is refused) or none (the frame's 3D inputs are refused: 2D only)
EXPECTED = {
    "32FC1 all 1e38": ("farther than depth_max 10 m", True),
    "32FC1 alternating float32 max/min": ("negative, ", True),
    "16UC1 all 65535 (saturated)": ("65535 (saturated or invalid)", True),
    "32FC1 all 1e-38": ("subnormal; these are not depths", True),
    "32FC1 with is_bigendian=1": ("reads as depth only with its bytes swapped", False),
    "32FC1 all NaN": ("NaN or infinite; no depth there", True),
    "32FC1 all inf": ("NaN or infinite; no depth there", True),
    "32FC1 all negative": ("negative; these are not depths", True),
    "32FC1 all zero": ("zero (no depth); no depth there", True),
    "16UC1 all zero": ("zero (no depth); no depth there", True),
    "fx = fy = 1e-30": ("its horizontal field of view is 180 degrees (fx = 1e-30 px over 640 px)", False),
    "cx = -1e9": ("its principal point cx = -1e+09 px lies outside the 640-pixel image", False),
    "K[8] = 0": ("K's last row must be (0, 0, 1), got (0, 0, 0)", False),
    "D of 1000 values of 1e9": ("distortion_model plumb_bob has 5 coefficients, but D has 1000", False),
    "binning 2^32-1": ("binning 4294967295x4294967295 leaves no pixel of the 640x480 image", False),
}


def test_every_case_of_the_table_has_an_expectation():
    assert set(EXPECTED) == set(DEPTH_CASES) | set(CAMERA_INFO_CASES)


@pytest.mark.parametrize("case", list(EXPECTED))
def test_hostile_depth_or_camera_info_gives_no_region_a_warning_and_diagnostics(harness, camera, node, kitchen,
                                                                                case):
    phrase, part_refused = EXPECTED[case]
    depth, info = numpy_to_image(kitchen.depth, "32FC1"), camera_info_message(kitchen.intrinsics, Header())
    if case in DEPTH_CASES:
        depth = DEPTH_CASES[case](kitchen.depth)
    else:
        info = CAMERA_INFO_CASES[case](kitchen.intrinsics)
    statuses_from = len(harness.diagnostics)
    segmentation, array = camera.frame(kitchen.rgb, depth, info, process=node, want_3d=part_refused)
    stamp = camera.sent[-1]
    assert segmentation.parts[0].pixel_count > 1000  # the 2D answer is still published
    values = harness.wait_status(NODE, lambda v, s: s.level == WARN and phrase in v["last_problem"]
                                 and phrase in s.message, 10, f"{phrase!r} in the 3D diagnostics", node,
                                 statuses_from, component=AFFORDANCES)
    if part_refused:
        assert array.regions == []
        assert values["last_problem"].startswith("no 3D region for pot/lid (")
        wait_for_log(harness, node, "no 3D region for pot/lid (")  # the warning (throttled per kind of reason)
    else:
        harness.spin_for(0.3)
        assert stamp not in camera.affordances
        assert values["last_problem"].endswith("publishing 2D only")
    _, again = good_frame(camera, node, kitchen)  # the node keeps serving: the next good frame has 3D again
    assert [r.query for r in again.regions] == ["pot/lid"]


def test_warnings_name_the_cause_and_what_to_check(harness, camera, node, kitchen):
    line = wait_for_log(harness, node, "no 3D region for pot/lid (no usable depth)")
    assert "WARN" in line and "pixels have usable depth, at least 10 are needed (unusable: " in line
    line = wait_for_log(harness, node, "reads as depth only with its bytes swapped")
    assert "WARN" in line and "fix the publisher" in line and line.endswith("publishing 2D only")
    line = wait_for_log(harness, node, "its horizontal field of view is 180 degrees")
    assert "camera_info on /test_p/camera_info cannot be used" in line and "check the calibration" in line


def test_queries_the_closed_model_never_learned_are_flagged_and_get_no_3d(harness, camera, node, kitchen):
    """The bundled model knows 13 kitchen classes: 'cup/handle' and what 'grasp' expands to beyond them (knob,
    grip) are flagged in the messages, warned once per query set, in /diagnostics, and get no 3D region unless
    publish_unknown_3d allows it (then flagged)."""
    reply = harness.call(SetQueries, f"/{NODE}/set_queries", SetQueries.Request(queries=["cup/handle; pot/lid"]))
    assert reply.success and list(reply.active_queries) == ["cup/handle", "pot/lid"]
    line = wait_for_log(harness, node, "never trained on cup/handle")
    assert "WARN" in line and "no 3D regions for them (set publish_unknown_3d" in line
    statuses_from = len(harness.diagnostics)
    segmentation, array = good_frame(camera, node, kitchen)
    assert [(p.query, p.unknown_query) for p in segmentation.parts] == [("cup/handle", True), ("pot/lid", False)]
    assert segmentation.parts[0].pixel_count > 1000  # found (a guess), and flagged
    assert [r.query for r in array.regions] == ["pot/lid"]
    values = harness.wait_status(NODE, lambda v, s: v["unknown_queries"] == "cup/handle" and s.level == WARN, 10,
                                 "the unknown query in /diagnostics", node, statuses_from)
    assert values["vocabulary"].startswith("closed vocabulary, 13 classes: pot/body, pot/handle")
    harness.wait_status(NODE, lambda v, s: "cup/handle: the model has a closed vocabulary" in
                        v["last_part_without_3d"], 10, "the withheld region in the 3D status", node, statuses_from,
                        component=AFFORDANCES)

    assert harness.set_parameter(NODE, "publish_unknown_3d", True).successful
    try:
        _, array = good_frame(camera, node, kitchen)
        assert [(r.query, r.unknown_query) for r in array.regions] == [("cup/handle", True), ("pot/lid", False)]
    finally:
        assert harness.set_parameter(NODE, "publish_unknown_3d", False).successful

    reply = harness.call(SetQueries, f"/{NODE}/set_queries", SetQueries.Request(queries=["grasp"]))
    assert reply.success and list(reply.active_queries) == ["handle", "knob", "grip"]
    line = wait_for_log(harness, node, "never trained on knob (from grasp), grip (from grasp)")
    segmentation, array = good_frame(camera, node, kitchen)
    assert [p.unknown_query for p in segmentation.parts] == [False, True, True]
    assert {r.query for r in array.regions} <= {"handle"}
    reply = harness.call(SetQueries, f"/{NODE}/set_queries", SetQueries.Request(queries=["pot/lid"]))
    assert reply.success


def test_plausibility_limits_are_run_time_parameters(harness, camera, node, kitchen):
    assert harness.set_parameter(NODE, "max_part_extent", 0.1).successful  # the lid is 0.23 m across
    try:
        statuses_from = len(harness.diagnostics)
        _, array = good_frame(camera, node, kitchen)
        assert array.regions == []
        harness.wait_status(NODE, lambda v, s: "larger than max_part_extent 0.1 m" in v["last_problem"], 10,
                            "the refusal in the 3D diagnostics", node, statuses_from, component=AFFORDANCES)
    finally:
        assert harness.set_parameter(NODE, "max_part_extent", 1.0).successful
    assert harness.set_parameter(NODE, "depth_max", 0.2).successful  # the whole scene is farther (0.23-0.69 m)
    try:
        _, array = good_frame(camera, node, kitchen)
        assert array.regions == []
    finally:
        assert harness.set_parameter(NODE, "depth_max", 10.0).successful
    result = harness.set_parameter(NODE, "depth_min", 20.0)  # above depth_max: refused with the reason
    assert not result.successful and "depth_min < depth_max" in result.reason
    assert not harness.set_parameter(NODE, "depth_max", 5000.0).successful  # outside the declared range
    _, array = good_frame(camera, node, kitchen)
    assert [r.query for r in array.regions] == ["pot/lid"]
    assert np.isfinite(array.regions[0].pose.pose.position.z)


def test_a_query_with_a_nul_is_refused_where_the_node_sees_it_whole():
    """Over DDS a NUL ends the string before it leaves the sender ('pot\\x00handle' arrives as 'pot'); set in the
    node's own process (launch, a composed node) the parameter is refused with the reason, and the set stays."""
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = SegmentNode("seg_nul", context=context, parameter_overrides=[
            Parameter("random_weights", value="tiny"), Parameter("queries", value="pot/lid")])
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        result = node.set_parameters([Parameter("queries", value="pot\x00handle")])[0]
        assert not result.successful and "would arrive cut short as 'pot'" in result.reason
        assert [q.name for q in node._segmenter.queries] == ["pot/lid"]
        node.close()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
