"""Shared fixtures. Every test run keeps DDS on this machine and on its own domain, uses the package's Fast DDS
profile for large images (as every start-up path of the package does) and keeps ROS log files out of ~/.ros.
Every test and the processes it starts share one cache of exported graphs and quality-gate verdicts (a fresh one
per run, or $PARTCLIPSEG_TEST_CACHE), so each model is exported once per run."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(Path(__file__).parent.parent / "config" / "fastdds_shm.xml"))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="partclipseg-ros-log-"))
os.environ["PARTCLIPSEG_CACHE"] = os.environ.get("PARTCLIPSEG_TEST_CACHE") or tempfile.mkdtemp(prefix="partclipseg-cache-")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from partclipseg.model import PartCLIPSeg, tiny_config  # noqa: E402


def make_tiny(arch: str = "partclipseg", seed: int = 0, **overrides) -> PartCLIPSeg:
    """A tiny random model in the official layout (width 64, 10 vision layers, 2 text layers)."""
    torch.manual_seed(seed)
    return PartCLIPSeg(tiny_config(arch, **overrides)).eval()


@pytest.fixture(scope="session")
def tiny_model() -> PartCLIPSeg:
    return make_tiny()


@pytest.fixture(scope="session")
def tiny_clipseg() -> PartCLIPSeg:
    return make_tiny("clipseg")


@pytest.fixture
def rgb_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def onnx_cache() -> Path:
    """The run's cache of exported graphs, engines and gate verdicts ($PARTCLIPSEG_CACHE of every process the tests
    start; exports are the slow part of backend tests)."""
    return Path(os.environ["PARTCLIPSEG_CACHE"])


@pytest.fixture(scope="session")
def tiny_graphs(onnx_cache):
    """The fp32 ONNX graphs of ``make_tiny()``, exported once into ``onnx_cache``."""
    from partclipseg.onnx.export import cached_graphs

    return cached_graphs(make_tiny(), onnx_cache, "fp32")


@pytest.fixture(scope="session")
def bundled_model() -> PartCLIPSeg:
    """The shipped model trained here (partclipseg/weights/kitchen-tiny.pth): real, trained weights."""
    from partclipseg.checkpoint import load_checkpoint
    from partclipseg.defaults import BUNDLED_CHECKPOINT

    return load_checkpoint(BUNDLED_CHECKPOINT)


def break_int8(model: PartCLIPSeg) -> PartCLIPSeg:
    """``model`` with the same fp32 output (to float rounding) but int8 graphs that disagree: one hidden unit of every
    decoder MLP scaled up 1000x and its output weights down 1000x (ReLU commutes with the scale). Its activations
    then dwarf the others, which int8's per-tensor activation scale rounds to zero (the outlier problem)."""
    with torch.no_grad():
        for layer in model.decoder.layers:
            layer.mlp.fc1.weight[0] *= 1000
            layer.mlp.fc1.bias[0] *= 1000
            layer.mlp.fc2.weight[:, 0] /= 1000
    return model


@pytest.fixture(scope="session")
def int8_breaking_checkpoint(tmp_path_factory) -> Path:
    """The bundled model through :func:`break_int8`, saved in the official layout."""
    from partclipseg.checkpoint import load_checkpoint, save_official
    from partclipseg.defaults import BUNDLED_CHECKPOINT

    return save_official(break_int8(load_checkpoint(BUNDLED_CHECKPOINT)),
                         tmp_path_factory.mktemp("int8-breaking") / "kitchen-int8-breaking.pth")


@pytest.fixture(scope="session")
def tiny_auto_ready(onnx_cache) -> str:
    """What a node with the shipped config (backend, device, precision auto) and random_weights tiny chooses,
    exported and quality-gated once in this process: node processes then find it cached and configure within their
    service timeouts. Returns the choice's reason."""
    from partclipseg.backends import BackendOptions
    from partclipseg.factory import Weights, open_backend

    return open_backend(Weights(random="tiny"), "auto", BackendOptions(device="auto", precision="auto"))[1].selection
