"""The node on ONNX Runtime, chosen by parameter or by backend auto (the shipped default), over real DDS."""
from __future__ import annotations

import numpy as np
import pytest

from ros_harness import Camera, Harness, segment_process, wait_for_log
from conftest import make_tiny
from partclipseg.backends import BackendOptions, make_backend
from partclipseg.data.samples import load_sample
from partclipseg.segmenter import Segmenter
from partclipseg_ros.image_conversion import image_to_numpy

pytestmark = pytest.mark.ros
QUERIES = "cup/handle; saucer/rim; handle"


def test_node_runs_the_onnxruntime_backend(tiny_graphs, onnx_cache, tmp_path):
    """backend:=onnxruntime precision:=fp32 with the exported graphs cached in cache_dir: the node's labels equal the
    core's ONNX Runtime segmenter on the same frame (the node's tiny random weights are make_tiny()'s)."""
    harness = Harness("test_ros_backends")
    process = segment_process(tmp_path / "node.log", "seg_ort", QUERIES, {"image": "/test_ort/image"},
                              {"backend": "onnxruntime", "precision": "fp32", "cache_dir": str(onnx_cache)})
    try:
        camera = Camera(harness, "/test_ort/image", "seg_ort")
        line = wait_for_log(harness, process, "configured:", timeout=60)
        assert "backend onnxruntime cpu fp32" in line and str(onnx_cache) in line
        coffee = load_sample("coffee")
        msg = camera.segment(coffee, process=process)
    finally:
        assert process.stop() == 0, process.log()[-3000:]
        harness.close()
    model = make_tiny()
    expected = Segmenter(model, make_backend("onnxruntime", model, BackendOptions(cache_dir=str(onnx_cache))))
    expected.set_queries(QUERIES)
    want = expected.segment(coffee)
    labels, _ = image_to_numpy(msg.labels, ("mono8",))
    np.testing.assert_array_equal(labels, want.labels)
    assert [p.pixel_count for p in msg.parts] == [p.pixel_count for p in want.parts]


def test_auto_falls_back_to_fp32_for_a_checkpoint_int8_would_change(int8_breaking_checkpoint, tmp_path):
    """The shipped config (backend, device and precision auto) on a checkpoint whose int8 graphs disagree with fp32:
    the first start exports with progress lines, the quality gate fails, fp32 runs; the log and /diagnostics say
    which backend runs and why."""
    harness = Harness("test_ros_backends_auto")
    process = segment_process(tmp_path / "node.log", "seg_auto", "pot/lid", {"image": "/test_auto/image"},
                              {"cache_dir": str(tmp_path / "cache")}, checkpoint=int8_breaking_checkpoint)
    try:
        camera = Camera(harness, "/test_auto/image", "seg_auto")
        line = wait_for_log(harness, process, "configured:", timeout=240)
        assert "backend onnxruntime cpu fp32" in line and "precision auto: fp32, because int8 labels agree" in line
        log = process.log()
        assert "exporting the int8 ONNX graphs of this model" in log and "checking int8 against fp32" in log
        assert "running fp32 instead, exact" in log
        values = harness.wait_status("seg_auto", lambda v, s: v["state"] == "active", 30, "active diagnostics",
                                     process)
        assert values["backend"].startswith("onnxruntime cpu fp32")
        assert "no GPU; ONNX Runtime is the fastest CPU backend" in values["backend_choice"]
        assert "fp32, because int8 labels agree with fp32 on" in values["backend_choice"]
        assert list(camera.segment(load_sample("kitchen"), process=process).queries) == ["pot/lid"]
    finally:
        assert process.stop() == 0, process.log()[-3000:]
        harness.close()
