"""How frames reach the node: compressed transport (image_transport's formats), input reliability that follows the
publisher, the diagnosis of frames lost on the way, and a clean stop and query change while a frame is in the
model."""
from __future__ import annotations

import signal
import struct
import time

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import (
    Camera, DepthCamera, Harness, NodeProcess, segment_process, slow_segment_process, wait_for_log,
)
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from partclipseg.data.samples import load_depth, load_sample
from partclipseg.errors import ImageError
from partclipseg.factory import open_model
from partclipseg.geometry.parts import GeometrySettings
from partclipseg.geometry.regions import affordance_regions
from partclipseg.segmenter import Segmenter
from partclipseg_ros.camera_input import follow_publishers
from partclipseg_ros.compressed import decode_depth, decode_image, encode_depth, encode_image
from partclipseg_ros.delivery import NO_PUBLISHER, NOTHING_SENT, STOPPED, TRANSPORT, DeliveryMonitor, DeliverySample
from partclipseg_ros.image_conversion import image_to_numpy, numpy_to_image
from partclipseg_ros.messages import camera_info_message
from partclipseg_ros.msg import PartSegmentation

RELIABLE, BEST_EFFORT = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT


# --- compressed formats (no DDS) --------------------------------------------------------------------------------


def test_compressed_images_decode_as_image_transport_writes_them():
    rgb = load_sample("coffee")
    png = encode_image(rgb, "rgb8", codec="png")
    assert png.format == "rgb8; png compressed bgr8"
    image, order = decode_image(png)
    assert order == "bgr" and np.array_equal(image[:, :, ::-1], rgb)  # PNG is lossless
    jpeg = encode_image(rgb, "rgb8")
    assert jpeg.format == "rgb8; jpeg compressed bgr8"
    image, _ = decode_image(jpeg)
    assert np.abs(image[:, :, ::-1].astype(int) - rgb).mean() < 4
    grey = encode_image(rgb[:, :, 0].copy(), "mono8")
    assert grey.format == "mono8; jpeg compressed mono8" and decode_image(grey)[0].ndim == 2
    old = CompressedImage(format="jpeg")  # older publishers name the codec only
    old.data = jpeg.data
    assert decode_image(old)[0].shape == rgb.shape


def test_compressed_depth_decodes_both_encodings():
    sample = load_depth("kitchen")
    millimetres = np.round(sample.depth * 1000).astype(np.uint16)
    msg = encode_depth(millimetres)
    assert msg.format == "16UC1; compressedDepth png"
    assert np.array_equal(decode_depth(msg), millimetres)
    metres = decode_depth(encode_depth(sample.depth))
    valid = sample.depth > 0
    assert np.isnan(metres[~valid]).all()
    assert np.abs(metres[valid] - sample.depth[valid]).max() < 1e-3  # the inverse-depth quantisation


def _compressed(fmt: str, data: bytes) -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = data
    return msg


@pytest.mark.parametrize("msg, phrase", [
    (_compressed("rgb8; jpeg compressed bgr8", b""), "has no data"),
    (_compressed("rgb8; jpeg compressed bgr8", b"\xff\xd8\xff" + bytes(200)), "could not be decoded"),
    (_compressed("rgb8; jpeg compressed bgr8", b"not an image at all"), "could not be decoded"),
    (_compressed("rgb8; tiff compressed bgr8", b"II*\x00"), "unsupported compressed image format"),
    (_compressed("16UC1; compressedDepth png", b"\x00" * 20), "unsupported compressed image format"),
    (_compressed("bgr16; png compressed bgr16", b"x"), "encoding 'bgr16'"),
])
def test_bad_compressed_images_say_what_is_wrong(msg, phrase):
    with pytest.raises(ImageError, match=phrase):
        decode_image(msg)


def test_bad_compressed_depth_says_what_is_wrong():
    good = encode_depth(load_depth("kitchen").depth)
    cases = [
        (_compressed("32FC1; compressedDepth rvl", good.data), "only PNG is decoded here"),
        (_compressed("mono8; compressedDepth png", good.data), "encoding 'mono8'"),
        (_compressed("32FC1; compressedDepth png", good.data[:10]), "shorter than its 12-byte header"),
        (_compressed("32FC1; compressedDepth png", struct.pack("<iff", 3, 1.0, 0.0) + good.data[12:]),
         "not inverse-depth coding"),
        (_compressed("32FC1; compressedDepth png", good.data[:12] + good.data[12:200]), "could not be decoded"),
    ]
    for msg, phrase in cases:
        with pytest.raises(ImageError, match=phrase):
            decode_depth(msg)


# --- reliability and delivery (no DDS) ---------------------------------------------------------------------------


def test_following_reliability():
    assert follow_publishers([]) == BEST_EFFORT  # matches whatever publisher comes
    assert follow_publishers([RELIABLE, RELIABLE]) == RELIABLE
    assert follow_publishers([RELIABLE, BEST_EFFORT]) == BEST_EFFORT


def _sample(t, received=0, lost=0, publishers=(BEST_EFFORT,), subscribed=BEST_EFFORT, idle=0.0):
    return DeliverySample(t, received, lost, tuple(publishers), subscribed, idle)


def test_delivery_diagnosis():
    monitor = DeliveryMonitor("/cam/image", "/opt/cfg/fastdds_shm.xml")
    assert monitor.diagnose(_sample(0.0, publishers=(), idle=2.0)) is None
    kind, text = monitor.diagnose(_sample(6.0, publishers=(), idle=6.0))
    assert kind == NO_PUBLISHER and "no publisher on /cam/image" in text
    assert monitor.diagnose(_sample(6.0, publishers=(), idle=6.0), required=False) is None
    assert monitor.diagnose(_sample(7.0, idle=7.0)) is None  # a camera just appeared: give it time
    kind, text = monitor.diagnose(_sample(12.5, idle=12.5))
    assert kind == TRANSPORT and "no message arrived in 6 s" in text and "512 KB" in text
    assert "FASTDDS_DEFAULT_PROFILES_FILE=/opt/cfg/fastdds_shm.xml" in text and "image_transport:=compressed" in text
    assert "publish reliable" in text
    reliable = DeliveryMonitor("/cam/image", "p.xml")
    reliable.diagnose(_sample(0.0, publishers=(RELIABLE,), subscribed=RELIABLE))
    kind, text = reliable.diagnose(_sample(6.0, publishers=(RELIABLE,), subscribed=RELIABLE, idle=6.0))
    assert kind == NOTHING_SENT and "streaming" in text
    # a reliable subscription does not match a best-effort publisher: the incompatible-QoS event reports that
    assert reliable.diagnose(_sample(7.0, subscribed=RELIABLE, idle=7.0)) is None
    stopped = DeliveryMonitor("/cam/image", "p.xml")
    stopped.diagnose(_sample(0.0))
    assert stopped.diagnose(_sample(1.0, received=10)) is None
    assert stopped.diagnose(_sample(7.0, received=10, idle=6.0))[0] == STOPPED

    lossy = DeliveryMonitor("/cam/image", "p.xml")
    assert lossy.diagnose(_sample(0.0, 100, 0)) is None
    assert lossy.diagnose(_sample(5.0, 145, 2)) is None  # 2 of 47: a few
    kind, text = lossy.diagnose(_sample(9.0, 160, 40))
    assert kind == TRANSPORT and "40 of 100 messages on /cam/image lost in transport in the last 9 s" in text
    assert lossy.diagnose(_sample(30.0, 460, 40)) is None  # the losses left the 10 s window


# --- over DDS, the node in its own process ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def harness():
    h = Harness("test_ros_transport")
    yield h
    h.close()


@pytest.mark.ros
def test_compressed_transport_gives_the_raw_results(harness, tmp_path):
    node_name, prefix, queries = "seg_z", "/test_z", "motorbike/wheel; motorbike/saddle"
    process = segment_process(tmp_path / "node.log", node_name, queries,
                              {"image": f"{prefix}/image", "depth": f"{prefix}/depth",
                               "camera_info": f"{prefix}/camera_info"},
                              {"image_transport": "compressed", "max_part_extent": "10.0",
                               "backend": "torch"})  # compared with the torch core; random masks span metres
    try:
        camera = DepthCamera(harness, prefix, node_name)
        harness.node.destroy_publisher(camera.publisher)
        harness.node.destroy_publisher(camera.depth_publisher)
        camera.publisher = harness.node.create_publisher(CompressedImage, f"{prefix}/image/compressed", 1)
        camera.depth_publisher = harness.node.create_publisher(CompressedImage, f"{prefix}/depth/compressedDepth", 1)
        camera.watch_3d()
        wait_for_log(harness, process, f"active: segmenting {prefix}/image/compressed (compressed")
        sample = load_depth("motorcycle")
        millimetres = np.round(sample.depth * 1000).astype(np.uint16)
        image_msg = encode_image(sample.rgb, "rgb8", codec="png")
        info = camera_info_message(sample.intrinsics, image_msg.header)
        msg, regions = camera.frame(image_msg, encode_depth(millimetres), info, process=process)

        model, _ = open_model(None, "tiny")
        segmenter = Segmenter(model)
        segmenter.set_queries(queries)
        expected = segmenter.segment(sample.rgb)
        labels, _ = image_to_numpy(msg.labels, ("mono8",))
        np.testing.assert_array_equal(labels, expected.labels)  # PNG: the same pixels as raw rgb8
        want, _ = affordance_regions(expected.parts, expected.labels, millimetres, sample.intrinsics,
                                     settings=GeometrySettings(max_part_extent=10.0))
        assert [r.query for r in regions.regions] == [w.query.name for w in want] and want
        for got, region in zip(regions.regions, want):
            assert got.point_count == region.geometry.point_count
            assert got.pose.pose.position.z == pytest.approx(region.geometry.centroid[2], abs=1e-6)

        bad = CompressedImage(format="rgb8; jpeg compressed bgr8")
        bad.data = b"\xff\xd8\xff" + bytes(100)
        bad.header.frame_id = "test_camera_optical_frame"
        camera.publisher.publish(bad)
        line = wait_for_log(harness, process, "rejected: JPEG image could not be decoded")
        assert f"image on {prefix}/image/compressed" in line
        assert camera.frame(image_msg, encode_depth(millimetres), info, process=process)[1] is not None
    finally:
        assert process.stop() == 0, process.log()[-3000:]


@pytest.mark.ros
def test_input_reliability_follows_the_publisher(harness, tmp_path):
    node_name, topic = "seg_q", "/test_q/image"
    process = segment_process(tmp_path / "node.log", node_name, "cup/handle", {"image": topic})
    try:
        answers = []
        harness.node.create_subscription(PartSegmentation, f"/{node_name}/segmentation", answers.append,
                                         QoSProfile(depth=10, reliability=RELIABLE))
        wait_for_log(harness, process, f"active: segmenting {topic}")  # started before any camera
        frame = numpy_to_image(load_sample("coffee")[::2, ::2].copy(), "rgb8")
        for reliability, word in ((BEST_EFFORT, "best effort"), (RELIABLE, "reliable"), (BEST_EFFORT, "best effort")):
            publisher = harness.node.create_publisher(Image, topic, QoSProfile(depth=1, reliability=reliability))
            harness.wait(lambda: publisher.get_subscription_count() > 0, 10, f"a {word} camera matched", process)
            status = harness.wait_status(node_name, lambda v, s: v["input_reliability"] == word
                                         and v["input_publishers"] == word, 10, f"the node following ({word})", process)
            assert status["input_topic"] == topic
            before, deadline = len(answers), time.monotonic() + 15
            while len(answers) == before and time.monotonic() < deadline:
                publisher.publish(frame)
                harness.spin_for(0.3)
            assert len(answers) > before, f"no answer to the frames of the {word} camera"
            harness.node.destroy_publisher(publisher)
        assert "subscribed reliable, following its publisher(s)" in process.log()
    finally:
        assert process.stop() == 0, process.log()[-3000:]


@pytest.mark.ros
def test_frames_lost_between_processes_are_diagnosed(harness, tmp_path):
    """A stock camera (its own process, no Fast DDS profile, best effort) sending 1280x720 rgb8 at 15 Hz: most
    frames are lost over UDP; the node says why and what to do, once in the log and in /diagnostics."""
    node_name, topic = "seg_l", "/test_l/image"
    process = segment_process(tmp_path / "node.log", node_name, "cup/handle", {"image": topic})
    camera = None
    try:
        wait_for_log(harness, process, f"active: segmenting {topic}")
        camera = NodeProcess(["-m", "partclipseg_ros.cli", "camera", "--topic", topic, "--size", "1280x720",
                              "--frames", "300"], tmp_path / "camera.log", env={"FASTDDS_DEFAULT_PROFILES_FILE": None})
        harness.wait(lambda: harness.node.count_publishers(topic) > 0, 30, "the camera publishing", process)
        status = harness.wait_status(node_name, lambda v, s: "lost in transport" in v["delivery"]
                                     or "no message arrived" in v["delivery"], 30, "the delivery diagnosis", process)
        assert "FASTDDS_DEFAULT_PROFILES_FILE=" in status["delivery"] and "compressed" in status["delivery"]
        harness.spin_for(2.0)
        warnings = [line for line in process.log().splitlines() if "Fix: start the camera" in line]
        assert len(warnings) == 1 and "WARN" in warnings[0]  # once
    finally:
        if camera is not None:
            camera.stop()
        assert process.stop() == 0, process.log()[-3000:]


@pytest.mark.ros
def test_query_change_and_ctrl_c_while_a_frame_is_in_the_model(harness, tmp_path):
    node_name, topic, delay = "seg_r", "/test_r/image", 1.5
    process = slow_segment_process(tmp_path / "node.log", node_name, topic, delay)
    try:
        assert harness.transition(node_name, "configure", process)
        assert harness.transition(node_name, "activate", process)
        camera = Camera(harness, topic, node_name)
        frame = load_sample("coffee")[::2, ::2].copy()
        camera.segment(frame, process=process)
        harness.spin_for(delay + 0.5)  # segment() sends again after 1 s: let that copy pass through the model too
        stamp = camera.publish(frame)
        harness.spin_for(delay / 3)  # the frame is in the model now
        camera.query.publish(String(data=""))  # clear the queries meanwhile
        harness.wait(lambda: stamp in camera.results, 10, "the frame that was in the model", process)
        assert list(camera.results[stamp][0].queries) == ["cup/handle"]  # finished with the queries it started with
        wait_for_log(harness, process, "queries cleared")
        camera.query.publish(String(data="cup/handle"))
        wait_for_log(harness, process, f"queries from /{node_name}/query: cup/handle")
        camera.publish(frame)
        harness.spin_for(delay / 3)  # the frame is in the model when Ctrl-C comes
    finally:
        code = process.stop()  # Ctrl-C while that frame is in the model
    log = process.log()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log and "not segmented" not in log and "set_queries() first" not in log, log[-3000:]


@pytest.mark.ros
def test_a_second_ctrl_c_during_the_clean_up(harness, tmp_path):
    """A terminal's Ctrl-C reaches the node and ros2 launch, which sends its own SIGINT while the node cleans up (here
    while a frame is still in the model): the node still finishes cleanly."""
    node_name, topic, delay = "seg_i", "/test_i/image", 1.5
    process = slow_segment_process(tmp_path / "node.log", node_name, topic, delay)
    try:
        assert harness.transition(node_name, "configure", process)
        assert harness.transition(node_name, "activate", process)
        camera = Camera(harness, topic, node_name)
        camera.segment(load_sample("coffee")[::2, ::2].copy(), process=process)
        harness.spin_for(delay + 0.5)
        camera.publish(load_sample("coffee")[::2, ::2].copy())
        harness.spin_for(delay / 3)  # the frame is in the model
        process.process.send_signal(signal.SIGINT)  # the terminal's
        time.sleep(0.3)
        process.process.send_signal(signal.SIGINT)  # launch's, during the clean-up
    finally:
        code = process.stop()
    log = process.log()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
