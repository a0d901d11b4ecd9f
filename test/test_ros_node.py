"""The segment node over real DDS, in its own process (started as users start it: `partclipseg-ros segment`)."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from ros_harness import RELIABLE, Camera, Harness, segment_process, wait_for_log
from sensor_msgs.msg import Image
from std_msgs.msg import String

from partclipseg.factory import open_model
from partclipseg.data.samples import load_sample
from partclipseg.segmenter import Segmenter
from partclipseg_ros.image_conversion import image_to_numpy, numpy_to_image
from partclipseg_ros.srv import SetQueries

pytestmark = pytest.mark.ros
NODE = "seg_a"
QUERIES = "cup/handle; saucer/rim"


@pytest.fixture(scope="module")
def harness():
    h = Harness("test_ros_node")
    yield h
    h.close()


@pytest.fixture(scope="module")
def node(harness, tmp_path_factory):
    """`partclipseg-ros segment` with the shipped config, tiny random weights, two queries, fast diagnostics, and
    backend torch: its output is compared with the torch core bit for bit."""
    process = segment_process(tmp_path_factory.mktemp("seg_a") / "node.log", NODE, QUERIES, {"image": "/test_a/image"},
                              {"backend": "torch"})
    yield process
    assert process.stop() == 0, process.log()[-3000:]


@pytest.fixture(scope="module")
def camera(harness, node):
    cam = Camera(harness, "/test_a/image", NODE)
    wait_for_log(harness, node, "active: segmenting /test_a/image")
    return cam


@pytest.fixture(scope="module")
def coffee():
    return load_sample("coffee")  # 600x400 rgb8 = 720 KB: more than the default 512 KB shared-memory segment


@functools.cache
def core_segmenter() -> Segmenter:
    model, _ = open_model(None, "tiny")  # the node's weights: same seed, same tiny configuration
    return Segmenter(model)


def core_result(image: np.ndarray, queries: str):
    segmenter = core_segmenter()
    segmenter.set_queries(queries)
    return segmenter.segment(image)


def test_segmentation_equals_core_library_and_keeps_the_header(camera, node, coffee):
    msg = camera.segment(coffee, process=node)
    expected = core_result(coffee, QUERIES)

    assert msg.header.frame_id == "test_camera_optical_frame"
    assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == camera.sent[-1]
    assert list(msg.queries) == ["cup/handle", "saucer/rim"]
    labels, _ = image_to_numpy(msg.labels, ("mono8",))
    assert msg.labels.header == msg.header and labels.shape == coffee.shape[:2]
    np.testing.assert_array_equal(labels, expected.labels)
    assert len(msg.parts) == len(expected.parts) == 2
    for part, want in zip(msg.parts, expected.parts):
        assert (part.query, part.object, part.part) == (want.query.name, want.query.object, want.query.part)
        assert part.pixel_count == want.pixel_count > 0
        assert part.score == pytest.approx(want.score, rel=1e-5)
        x, y, w, h = want.roi
        assert (part.roi.x_offset, part.roi.y_offset, part.roi.width, part.roi.height) == (x, y, w, h)
        mask, _ = image_to_numpy(part.mask, ("mono8",))
        np.testing.assert_array_equal(mask, np.where(expected.labels[y:y + h, x:x + w] == want.label, 255, 0))
        assert part.mask.header == msg.header


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8", "padded rgb8"])
def test_other_encodings_give_the_same_labels(camera, node, coffee, encoding):
    if encoding == "padded rgb8":  # rows padded to a 4-byte multiple + 8 bytes, as some drivers send them
        height, width = coffee.shape[:2]
        step = width * 3 + 8
        padded = np.zeros((height, step), dtype=np.uint8)
        padded[:, :width * 3] = coffee.reshape(height, -1)
        image = Image(height=height, width=width, encoding="rgb8", step=step)
        image.data = padded.tobytes()
        msg = camera.segment(image, process=node)
    else:
        converted = {"bgr8": coffee[:, :, ::-1], "rgba8": np.dstack([coffee, np.full(coffee.shape[:2], 7, np.uint8)]),
                     "bgra8": np.dstack([coffee[:, :, ::-1], np.zeros(coffee.shape[:2], np.uint8)])}[encoding]
        msg = camera.segment(converted, encoding, process=node)
    labels, _ = image_to_numpy(msg.labels, ("mono8",))
    np.testing.assert_array_equal(labels, core_result(coffee, QUERIES).labels)


def test_mono8_is_segmented_as_grey(camera, node, coffee):
    grey = coffee.mean(axis=2).astype(np.uint8)
    msg = camera.segment(grey, "mono8", process=node)
    labels, _ = image_to_numpy(msg.labels, ("mono8",))
    np.testing.assert_array_equal(labels, core_result(np.dstack([grey] * 3), QUERIES).labels)


def test_query_change_by_topic_then_by_service(harness, camera, node, coffee):
    small = coffee[::4, ::4].copy()
    camera.query.publish(String(data="knife handle"))
    harness.wait(lambda: list(camera.segment(small, process=node).queries) == ["knife/handle"], 30,
                 "a segmentation with the query published on the query topic", node)

    request = SetQueries.Request(queries=["pot/handle", "mug's handle; knife/blade"])
    reply = harness.call(SetQueries, f"/{NODE}/set_queries", request)
    assert reply.success, reply.message
    assert list(reply.active_queries) == ["pot/handle", "mug/handle", "knife/blade"]
    # The swap is done when the service answers: the next frame already uses the new set.
    assert list(camera.segment(small, process=node).queries) == ["pot/handle", "mug/handle", "knife/blade"]
    assert harness.get_parameter(NODE, "queries") == "pot/handle; mug/handle; knife/blade"

    reply = harness.call(SetQueries, f"/{NODE}/set_queries", SetQueries.Request(queries=["pot/"]))
    assert not reply.success and "the part is empty" in reply.message
    assert list(reply.active_queries) == ["pot/handle", "mug/handle", "knife/blade"]

    reply = harness.call(SetQueries, f"/{NODE}/set_queries", SetQueries.Request(queries=[QUERIES]))
    assert reply.success and list(reply.active_queries) == ["cup/handle", "saucer/rim"]


def _bad_images(coffee: np.ndarray) -> dict[str, tuple[Image, str]]:
    good = numpy_to_image(coffee[:40, :50].copy(), "rgb8")
    short_step = numpy_to_image(coffee[:40, :50].copy(), "rgb8")
    short_step.step = 50 * 3 - 1
    truncated = numpy_to_image(coffee[:40, :50].copy(), "rgb8")
    truncated.data = bytes(good.data)[:-10]
    return {
        "yuv422": (Image(height=40, width=50, encoding="yuv422", step=100, data=bytes(4000)),
                   "unsupported image encoding 'yuv422'"),
        "depth": (numpy_to_image(np.zeros((40, 50), np.uint16), "16UC1"), "16UC1 is a depth image"),
        "step": (short_step, "step 149 is smaller than one row"),
        "truncated": (truncated, "image data is truncated"),
        "empty": (Image(height=0, width=0, encoding="rgb8", step=0), "image is empty"),
    }


@pytest.mark.parametrize("case", ["yuv422", "depth", "step", "truncated", "empty"])
def test_bad_image_is_logged_reported_and_the_next_frame_served(harness, camera, node, coffee, case):
    image, phrase = _bad_images(coffee)[case]
    camera.publish(image)
    line = wait_for_log(harness, node, phrase)
    assert "WARN" in line and "/test_a/image rejected" in line
    values = harness.wait_status(NODE, lambda v, s: phrase in v["last_error"], 10, f"diagnostics with {phrase!r}",
                                 node)
    assert int(values["frames_rejected"]) >= 1
    assert len(camera.segment(coffee[::4, ::4].copy(), process=node).parts) == 2


@pytest.mark.parametrize("query, phrase", [("x" * 100, "is 100 characters long; the limit is 64"),
                                           ("; ".join(f"cup/part{i}" for i in range(17)), "at most 16 are served")])
def test_bad_query_is_logged_reported_and_the_old_queries_stay(harness, camera, node, coffee, query, phrase):
    camera.query.publish(String(data=query))
    line = wait_for_log(harness, node, phrase)
    assert "WARN" in line and "still active: cup/handle; saucer/rim" in line
    harness.wait_status(NODE, lambda v, s: phrase in v["last_error"], 10, "the query error in diagnostics", node)
    assert list(camera.segment(coffee[::4, ::4].copy(), process=node).queries) == ["cup/handle", "saucer/rim"]


def test_empty_query_clears_and_frames_get_empty_answers(harness, camera, node, coffee):
    camera.query.publish(String(data=" "))
    wait_for_log(harness, node, f"queries cleared (/{NODE}/query)")
    harness.wait_status(NODE, lambda v, s: v["active_queries"] == "" and "no active queries" in s.message, 10,
                        "diagnostics without active queries", node)
    small = coffee[::4, ::4].copy()
    msg = camera.segment(small, process=node)
    labels, _ = image_to_numpy(msg.labels, ("mono8",))
    assert list(msg.queries) == [] and list(msg.parts) == [] and labels.shape == small.shape[:2] and not labels.any()
    camera.query.publish(String(data=QUERIES))
    harness.wait(lambda: len(camera.segment(small, process=node).queries) == 2, 30, "the queries back", node)


def test_parameters_change_at_run_time_within_their_rules(harness, camera, node, coffee):
    small = coffee[::4, ::4].copy()
    assert harness.set_parameter(NODE, "score_threshold", 0.99).successful  # random weights: p ~ 0.5 everywhere
    labels, _ = image_to_numpy(camera.segment(small, process=node).labels, ("mono8",))
    assert not labels.any()
    assert harness.set_parameter(NODE, "score_threshold", 0.0).successful
    labels, _ = image_to_numpy(camera.segment(small, process=node).labels, ("mono8",))
    assert labels.any()

    refused = harness.set_parameter(NODE, "score_threshold", 1.5)
    assert not refused.successful
    refused = harness.set_parameter(NODE, "input_qos", "reliable")
    assert not refused.successful and "read at activate" in refused.reason
    refused = harness.set_parameter(NODE, "checkpoint", "/some/file.pth")
    assert not refused.successful and "read at configure" in refused.reason
    refused = harness.set_parameter(NODE, "mode", "oracle")
    assert not refused.successful and "needs the objects" in refused.reason
    refused = harness.set_parameter(NODE, "queries", "pot//handle")
    assert not refused.successful and "one '/'" in refused.reason


def test_overlay_and_labels_topics_carry_the_source_header(harness, camera, node, coffee):
    overlays, labels = [], []
    harness.node.create_subscription(Image, f"/{NODE}/overlay", overlays.append, RELIABLE)
    harness.node.create_subscription(Image, f"/{NODE}/labels", labels.append, RELIABLE)
    harness.wait(lambda: harness.node.count_publishers(f"/{NODE}/overlay") > 0, 10, "the overlay publisher")
    for _ in range(5):  # the node draws an overlay once its publisher has matched our subscription
        msg = camera.segment(coffee, process=node)
        try:
            harness.wait(lambda: any(o.header == msg.header for o in overlays), 3, "the overlay of that frame", node)
            break
        except AssertionError:
            continue
    harness.wait(lambda: any(m.header == msg.header for m in labels), 10, "the labels of that frame", node)
    overlay = next(o for o in overlays if o.header == msg.header)
    drawn, _ = image_to_numpy(overlay)
    assert overlay.encoding == "rgb8" and drawn.shape == coffee.shape and not np.array_equal(drawn, coffee)
    assert bytes(next(m for m in labels if m.header == msg.header).data) == bytes(msg.labels.data)


def test_diagnostics_describe_the_running_node(harness, camera, node, coffee):
    for _ in range(3):
        camera.segment(coffee[::4, ::4].copy(), process=node)
    values = harness.wait_status(NODE, lambda v, s: v["state"] == "active", 10, "active diagnostics", node)
    assert values["backend"] == "torch cpu fp32"
    assert values["backend_choice"] == ("torch as configured; precision auto: fp32 (no reduced precision is gated "
                                        "for torch on cpu)")
    assert values["model"].startswith("RANDOM tiny") and values["random_weights"] == "true"
    assert values["active_queries"] == "cup/handle; saucer/rim"
    assert values["input_topic"] == "/test_a/image" and values["input_qos"] == "best_available, depth 1"
    assert values["input_reliability"] == values["input_publishers"] == "best effort"  # follows the test's camera
    assert values["input_transport"] == "raw" and values["delivery"] == ""
    assert int(values["frames_published"]) >= 3 and int(values["queue_length"]) <= 1
    received = int(values["frames_received"])
    processed, dropped = int(values["frames_processed"]), int(values["frames_dropped"])
    assert 0 <= received - processed - dropped <= 2  # every accepted frame is answered, dropped, or in hand
