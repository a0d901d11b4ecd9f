"""Message conversion, parameter rules, log throttling and start-up helpers of the ROS layer (no DDS needed)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from partclipseg.checkpoint import CheckpointError
from partclipseg.preprocess import ImageError
from partclipseg.queries import PartQuery
from partclipseg.postprocess import PartResult, Result
from partclipseg_ros import cli, parameters
from partclipseg_ros.cli import demo
from partclipseg_ros.diagnostics import THROTTLE_KEYS, FrameStats, Throttle
from partclipseg_ros.image_conversion import image_to_numpy, numpy_to_image
from partclipseg_ros.messages import segmentation_message

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("encoding, shape, dtype", [
    ("rgb8", (5, 7, 3), np.uint8), ("bgra8", (5, 7, 4), np.uint8), ("mono8", (5, 7), np.uint8),
    ("16UC1", (5, 7), np.uint16), ("32FC1", (5, 7), np.float32)])
def test_round_trip_is_exact_and_the_view_is_zero_copy(encoding, shape, dtype):
    array = (np.arange(np.prod(shape)) * 37 % 251).astype(dtype).reshape(shape)
    msg = numpy_to_image(array, encoding)
    view, _ = image_to_numpy(msg, (encoding,))
    np.testing.assert_array_equal(view, array)
    assert np.shares_memory(view, np.frombuffer(msg.data, dtype=np.uint8)) and not view.flags.writeable


def test_padded_rows_big_endian_and_colour_order():
    depth = np.array([[1, 2, 3], [258, 1000, 65535]], dtype=np.uint16)
    rows = np.zeros((2, 10), dtype=np.uint8)  # step 10 > 3 * 2 bytes
    rows[:, :6] = depth.astype(">u2").view(np.uint8).reshape(2, 6)
    msg = Image(height=2, width=3, encoding="16UC1", is_bigendian=1, step=10, data=rows.tobytes())
    view, _ = image_to_numpy(msg, ("16UC1",))
    np.testing.assert_array_equal(view, depth)
    assert view.dtype.isnative
    assert image_to_numpy(numpy_to_image(np.zeros((2, 2, 3), np.uint8), "bgr8"))[1] == "bgr"
    assert image_to_numpy(numpy_to_image(np.zeros((2, 2, 3), np.uint8), "rgb8"))[1] == "rgb"


@pytest.mark.parametrize("change, phrase", [
    (dict(encoding="yuv422"), "unsupported image encoding 'yuv422'; accepted: rgb8, bgr8, mono8, rgba8, bgra8"),
    (dict(encoding="8UC3"), "does not say the channel order"),
    (dict(encoding="bayer_rggb8"), "need debayering"),
    (dict(step=29), "step 29 is smaller than one row of a 10-pixel rgb8 image (30 bytes)"),
    (dict(data=bytes(100)), "image data is truncated: 100 bytes for 4 rows of step 30 (expected 120)"),
    (dict(height=0), "image is empty (10x0, encoding rgb8)"),
    (dict(width=0), "image is empty"),
])
def test_malformed_images_are_refused_with_the_reason(change, phrase):
    msg = numpy_to_image(np.zeros((4, 10, 3), np.uint8), "rgb8")
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ImageError) as err:
        image_to_numpy(msg)
    assert phrase in str(err.value)


def test_depth_on_the_image_topic_says_so():
    with pytest.raises(ImageError, match="16UC1 is a depth image"):
        image_to_numpy(numpy_to_image(np.zeros((2, 2), np.uint16), "16UC1"))


def test_segmentation_message_crops_each_mask_to_its_roi():
    labels = np.zeros((6, 8), dtype=np.uint8)
    labels[1:3, 2:5] = 1
    labels[4, 7] = 2
    parts = [PartResult(PartQuery("handle", "pot"), 1, 0.75, 6, (2, 1, 3, 2)),
             PartResult(PartQuery("lid"), 2, 0.5, 1, (7, 4, 1, 1)),
             PartResult(PartQuery("spout", "kettle"), 3, 0.0, 0, (0, 0, 0, 0))]
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 34
    msg = segmentation_message(Result(labels=labels, parts=parts, logits=None), header)
    assert msg.header == header and list(msg.queries) == ["pot/handle", "lid", "kettle/spout"]
    np.testing.assert_array_equal(image_to_numpy(msg.labels, ("mono8",))[0], labels)
    handle, lid, spout = msg.parts
    assert (handle.object, handle.part, handle.score, handle.pixel_count) == ("pot", "handle", 0.75, 6)
    assert (handle.roi.x_offset, handle.roi.y_offset, handle.roi.width, handle.roi.height) == (2, 1, 3, 2)
    np.testing.assert_array_equal(image_to_numpy(handle.mask, ("mono8",))[0], np.full((2, 3), 255))
    assert lid.object == "" and image_to_numpy(lid.mask, ("mono8",))[0].tolist() == [[255]]
    assert (spout.pixel_count, spout.mask.height, spout.mask.width) == (0, 0, 0)
    assert all(p.mask.header == header for p in msg.parts)


@pytest.mark.parametrize("name, value, state, phrase", [
    ("random_weights", "huge", "unconfigured", "random_weights must be one of '', 'tiny', 'full'"),
    ("checkpoint", "x.pth", "active", "read at configure"),
    ("checkpoint", "x.pth", "inactive", "read at configure"),
    ("input_qos", "reliable", "active", "read at activate"),
    ("input_qos", "best", "inactive", "input_qos must be one of"),
])
def test_parameter_refusals(name, value, state, phrase):
    assert phrase in parameters.refusal(Parameter(name, value=value), state)


@pytest.mark.parametrize("name, value, state", [
    ("checkpoint", "x.pth", "unconfigured"), ("input_qos", "reliable", "inactive"),
    ("score_threshold", 0.5, "active"), ("queries", "pot/handle", "active")])
def test_parameter_changes_allowed(name, value, state):
    assert parameters.refusal(Parameter(name, value=value), state) is None


def test_throttle_lets_each_message_through_once_per_period():
    now = [0.0]
    throttle = Throttle(5.0, clock=lambda: now[0])
    assert throttle("a") == "a" and throttle("b") == "b"
    assert throttle("a") is None and throttle("a") is None
    now[0] = 5.1
    assert throttle("a") == "a (2 more like this since)" and throttle("b") == "b"


def test_throttle_memory_is_bounded_under_ever_new_messages():
    """A stream of distinct bad inputs (random queries) must not grow the node's memory: keys whose period is over
    are forgotten, those still holding lines back are kept."""
    now = [0.0]
    throttle = Throttle(5.0, clock=lambda: now[0])
    assert throttle("repeated") == "repeated" and throttle("repeated") is None
    for i in range(10_000):
        now[0] += 0.01
        assert throttle(f"query {i!r} rejected") is not None
    assert len(throttle._last) <= THROTTLE_KEYS + 5 / 0.01 + 2
    assert throttle("repeated") == "repeated (1 more like this since)"


def test_frame_stats_window():
    now = [0.0]
    stats = FrameStats(clock=lambda: now[0])
    for latency in (10.0, 30.0):
        stats.received()
        stats.published(latency, model_ms=5.0)
    stats.received()
    stats.error("bad frame", rejected_frame=True)
    now[0] = 2.0
    window = stats.snapshot()
    assert (window.input_hz, window.output_hz, window.latency_ms_mean, window.latency_ms_max) == (1.5, 1.0, 20, 30)
    assert (window.model_ms_mean, window.total_rejected, window.last_error, window.last_error_age_s) == \
        (5.0, 1, "bad frame", 2.0)
    now[0] = 3.0
    assert stats.snapshot().published == 0 and stats.snapshot().total_published == 2


def test_segment_command_builds_the_ros_arguments():
    args = cli.build_parser(["-p", "overlay:=false"]).parse_args(
        ["segment", "image:=/cam/image", "score_threshold:=0.25", "depth:=", "--random-weights", "tiny",
         "--queries", "pot/handle; mug's handle", "-r", "camera_info:=/cam/info"])
    ros = cli.ros_arguments(args, cli.start_values(args))
    assert ros[:2] == ["--ros-args", "--params-file"] and ros[2].endswith("config/segment.yaml")
    assert ros[3:] == ["-p", "score_threshold:=0.25", "-p", 'random_weights:="tiny"',
                       "-p", 'queries:="pot/handle; mug\'s handle"', "-r", "image:=/cam/image",
                       "-r", "__ns:=/partclipseg", "-r", "__node:=partclipseg", "-r", "camera_info:=/cam/info",
                       "-p", "overlay:=false"]


def test_demo_without_the_bundled_model_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "BUNDLED_CHECKPOINT", tmp_path / "kitchen-tiny.pth")
    args = argparse.Namespace(checkpoint=None, random_weights=None)
    with pytest.raises(CheckpointError) as err:
        demo.demo_weights(args)
    assert "kitchen-tiny.pth is not there" in str(err.value) and "--random-weights tiny" in str(err.value)
    (tmp_path / "kitchen-tiny.pth").write_bytes(b"")
    assert demo.demo_weights(args) == (str(tmp_path / "kitchen-tiny.pth"), "")
    assert demo.demo_weights(argparse.Namespace(checkpoint=None, random_weights="tiny")) == ("", "tiny")
