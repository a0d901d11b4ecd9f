"""Several cameras in one node: one model and one query set, each camera's inputs and outputs under its name, frames
of the cameras encoded together, and a camera that stops never holding the others."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from ros_harness import Camera, Harness, NodeProcess, fqn, wait_for_log

from partclipseg.data.samples import load_sample
from partclipseg.factory import open_model
from partclipseg.segmenter import Segmenter
from partclipseg_ros.image_conversion import image_to_numpy

pytestmark = pytest.mark.ros
NODE = "seg_m"
QUERIES = "cup/handle; cat/ear"
CAMERAS = {"head": "/test_m/head_camera/image", "wrist": "/test_m/wrist_camera/image"}


@pytest.fixture(scope="module")
def harness():
    h = Harness("test_ros_cameras")
    yield h
    h.close()


@pytest.fixture(scope="module")
def node(harness, tmp_path_factory):
    """`partclipseg-ros segment` with two cameras, their images remapped as a launch line would do it."""
    remaps = "; ".join(f"{name}/image:={topic}" for name, topic in CAMERAS.items())
    process = NodeProcess(["-m", "partclipseg_ros.cli", "segment", "--random-weights", "tiny", "--queries", QUERIES,
                           "--name", NODE, "--namespace", NODE, "cameras:=head; wrist", f"remappings:={remaps}",
                           "-p", "diagnostics_period:=0.2", "-p", "backend:=torch"],  # batches; compared with the core
                          tmp_path_factory.mktemp("seg_m") / "node.log")
    yield process
    assert process.stop() == 0, process.log()[-3000:]


@pytest.fixture(scope="module")
def cameras(harness, node):
    out = {name: Camera(harness, topic, NODE, camera=name) for name, topic in CAMERAS.items()}
    for topic in CAMERAS.values():
        wait_for_log(harness, node, f"active: segmenting {topic}")
    return out


@functools.cache
def core_labels(image_key: str) -> np.ndarray:
    model, _ = open_model(None, "tiny")
    segmenter = Segmenter(model)
    segmenter.set_queries(QUERIES)
    return segmenter.segment(IMAGES[image_key]).labels


IMAGES = {"head": load_sample("coffee")[::2, ::2].copy(), "wrist": load_sample("chelsea")}


def test_each_camera_is_answered_on_its_own_topics_with_its_own_labels(harness, node, cameras):
    for name, camera in cameras.items():
        msg = camera.segment(IMAGES[name], process=node)
        assert list(msg.queries) == ["cup/handle", "cat/ear"] and msg.header.frame_id == "test_camera_optical_frame"
        labels, _ = image_to_numpy(msg.labels, ("mono8",))
        np.testing.assert_array_equal(labels, core_labels(name))
    for name, camera in cameras.items():
        status = harness.wait_status(NODE, lambda v, s, n=name: v["camera"] == n and v["state"] == "active", 10,
                                     f"the {name} camera's status", node, component=f"{name}: part segmentation")
        assert status["input_topic"] == CAMERAS[name] and int(status["frames_published"]) >= 1
        assert f"{fqn(NODE)}: {name}: affordances" in {s.name for s in harness.diagnostics}


def test_frames_of_both_cameras_are_encoded_together_and_a_silent_camera_holds_nobody(harness, node, cameras):
    head, wrist = cameras["head"], cameras["wrist"]
    for _ in range(20):  # both at once, faster than the model: their frames wait together
        head.publish(IMAGES["head"])
        wrist.publish(IMAGES["wrist"])
        harness.spin_for(0.05)
    status = harness.wait_status(NODE, lambda v, s: v["camera"] == "head" and int(v["frames_batched"]) > 0, 20,
                                 "head frames encoded together with wrist frames", node,
                                 component="head: part segmentation")
    assert int(status["frames_batched"]) <= int(status["frames_processed"])
    answered = len(head.order)
    for _ in range(10):  # the wrist camera stopped: the head camera is served alone
        head.publish(IMAGES["head"])
        harness.spin_for(0.1)
    harness.wait(lambda: len(head.order) >= answered + 3, 20, "head answers while the wrist is silent", node)
    assert "Traceback" not in node.log()
