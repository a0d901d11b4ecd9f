"""Lifecycle driven from another process, a late-joining node, and backpressure with a model slower than the camera.

The nodes run as `ros2 run partclipseg_ros segment_node` starts them: unconfigured; this test process drives them.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from ros_harness import Camera, Harness, NodeProcess, fqn, slow_segment_process, wait_for_log
from std_msgs.msg import String

from partclipseg.data.samples import load_sample

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("tiny_auto_ready")]  # nodes run backend auto


@pytest.fixture
def harness():
    h = Harness("test_ros_lifecycle")
    yield h
    h.close()


def test_lifecycle_from_another_process_and_a_late_joiner_gets_the_query(harness, tmp_path):
    node = "seg_b"
    camera = Camera(harness, "/test_b/image", node)
    camera.query.publish(String(data="cup/handle"))  # latched: the node starts only afterwards
    process = NodeProcess(["-m", "partclipseg_ros.segment_node", "--ros-args", "-r", f"__node:={node}",
                           "-r", f"__ns:=/{node}", "-r", "image:=/test_b/image", "-p", "diagnostics_period:=0.2"], tmp_path / "node.log")
    frame = load_sample("coffee")[::2, ::2].copy()
    try:
        assert harness.state(node) == "unconfigured"
        # No weights: configure fails with the core's message, the node stays up and can be configured again.
        assert not harness.transition(node, "configure", process)
        line = wait_for_log(harness, process, "configure failed: no checkpoint given")
        assert "ERROR" in line
        assert "Weights are never downloaded" in process.log()
        assert harness.state(node) == "unconfigured"
        harness.wait_status(node, lambda v, s: s.level == b"\x02" and "no checkpoint given" in s.message, 10,
                            "an ERROR diagnostics status", process)

        assert harness.set_parameter(node, "random_weights", "tiny").successful
        assert harness.transition(node, "configure", process)
        assert harness.state(node) == "inactive"
        assert harness.transition(node, "activate", process)
        assert harness.state(node) == "active"
        # the latched query reaches the late joiner on its own (DDS delivers it after the subscription matches,
        # so a frame sent at once may still be answered without it)
        assert "cup/handle" in wait_for_log(harness, process, "queries from")
        assert list(camera.segment(frame, process=process).queries) == ["cup/handle"]

        assert harness.transition(node, "deactivate", process)
        assert harness.state(node) == "inactive"
        harness.wait(lambda: harness.node.count_subscribers("/test_b/image") == 0, 10, "the image unsubscribed")
        answered = len(camera.order)
        for _ in range(5):
            camera.publish(frame)
            harness.spin_for(0.1)
        harness.spin_for(0.5)
        assert len(camera.order) == answered  # inactive: no output
        values = harness.wait_status(node, lambda v, s: v["state"] == "inactive", 10, "inactive diagnostics")
        assert values["queue_length"] == "0"

        # The most common complaint, "nothing is published": a reliable subscription to a best-effort camera.
        assert harness.set_parameter(node, "input_qos", "reliable").successful  # allowed while inactive
        assert harness.transition(node, "activate", process)
        line = wait_for_log(harness, process, "has an incompatible RELIABILITY QoS")
        assert "WARN" in line and "input_qos=reliable" in line
        harness.wait_status(node, lambda v, s: "incompatible RELIABILITY" in v["last_error"], 10,
                            "the QoS mismatch in diagnostics", process)
        assert harness.transition(node, "deactivate", process)
        assert harness.set_parameter(node, "input_qos", "sensor_data").successful
        assert harness.transition(node, "activate", process)
        assert list(camera.segment(frame, process=process).queries) == ["cup/handle"]  # queries survive

        assert harness.transition(node, "deactivate", process)
        assert harness.transition(node, "cleanup", process)
        assert harness.state(node) == "unconfigured"
        wait_for_log(harness, process, "unconfigured: model released")
        assert harness.transition(node, "unconfigured_shutdown", process)
        assert harness.state(node) == "finalized"
    finally:
        assert process.stop() == 0, process.log()[-3000:]


def test_backpressure_latest_frame_only_with_a_slow_model(harness, tmp_path):
    """30 Hz camera, model ~5x slower: no backlog, output never more than one frame stale, memory flat (torch:
    this is about the worker, not the backend)."""
    node, delay, rate, seconds = "seg_slow", 0.2, 30.0, 6.0
    camera = Camera(harness, "/test_c/image", node)
    process = slow_segment_process(tmp_path / "node.log", node, "/test_c/image", delay, "backend:=torch",
                                   "diagnostics_period:=0.25")
    frame = np.ascontiguousarray(np.resize(load_sample("coffee"), (480, 640, 3)))  # 640x480 rgb8, 922 KB
    try:
        assert harness.transition(node, "configure", process) and harness.transition(node, "activate", process)
        camera.segment(frame, process=process)  # warm-up
        statuses_from = len(harness.diagnostics)
        sent: list[tuple[int, float]] = []  # (stamp, publish time)
        rss = []
        start = time.monotonic()
        while (now := time.monotonic()) - start < seconds:
            sent.append((camera.publish(frame), now))
            if len(sent) == int(rate):  # after one second, the steady state
                rss.append(process.rss_mb())
            harness.spin_for(max(0.0, start + len(sent) / rate - time.monotonic()))
        rss.append(process.rss_mb())
        last_stamp = sent[-1][0]
        harness.wait(lambda: last_stamp in camera.results, 10, "the answer to the last frame", process)

        published_at = dict(sent)
        index = {stamp: i for i, (stamp, _) in enumerate(sent)}
        answers = [key for key in camera.order if key in index]
        assert len(answers) >= seconds * 2, f"only {len(answers)} answers"
        assert len(answers) < len(sent) / 2, "the slow model cannot have answered most frames"
        assert [index[a] for a in answers] == sorted({index[a] for a in answers})  # in order, each once
        # Latest frame only: when the node finishes a frame, it takes the newest one, so an answered frame was
        # published at most one frame period before the previous answer came out (plus transport; the median is
        # robust to this test process being scheduled late on a loaded machine). A backlog would make the ages
        # grow with every frame; a deeper slot shows in queue_length below.
        received = [camera.results[a][1] for a in answers]
        stale = sorted(received[i - 1] - published_at[answers[i]] for i in range(1, len(answers)))
        assert stale[len(stale) // 2] < 1 / rate + 0.05, f"median staleness {stale[len(stale) // 2]:.3f} s"
        steps = sorted(b - a for a, b in zip(received, received[1:]))
        ages = [camera.results[a][1] - published_at[a] for a in answers]
        assert max(ages) < 3 * steps[len(steps) // 2] + 0.2, f"answers up to {max(ages):.2f} s old"
        skipped = [index[b] - index[a] for a, b in zip(answers, answers[1:])]
        assert sorted(skipped)[len(skipped) // 2] >= 3  # frames replaced while the model was busy
        statuses = [s for s in harness.diagnostics[statuses_from:] if s.name == f"{fqn(node)}: part segmentation"]
        values = [{kv.key: kv.value for kv in s.values} for s in statuses]
        assert len(values) >= 10 and all(int(v["queue_length"]) <= 1 for v in values)
        final = values[-1]
        assert int(final["frames_dropped"]) >= len(sent) / 2
        assert rss[-1] - rss[0] < 40, f"RSS grew from {rss[0]:.0f} MB to {rss[-1]:.0f} MB"
        assert harness.transition(node, "deactivate", process)
    finally:
        assert process.stop() == 0, process.log()[-3000:]
