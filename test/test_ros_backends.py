"""The node on another backend than torch: ONNX Runtime, chosen by parameter, over real DDS."""
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
    """backend:=onnxruntime with the exported graphs cached in cache_dir: the node's labels equal the core's
    ONNX Runtime segmenter on the same frame (the node's tiny random weights are make_tiny()'s)."""
    harness = Harness("test_ros_backends")
    process = segment_process(tmp_path / "node.log", "seg_ort", QUERIES, {"image": "/test_ort/image"},
                              {"backend": "onnxruntime", "cache_dir": str(onnx_cache)})
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
