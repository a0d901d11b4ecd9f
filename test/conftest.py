"""Shared fixtures. Every test run keeps DDS on this machine and on its own domain, uses the package's Fast DDS
profile for large images (as every start-up path of the package does) and keeps ROS log files out of ~/.ros."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(Path(__file__).parent.parent / "config" / "fastdds_shm.xml"))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="partclipseg-ros-log-"))

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
def onnx_cache(tmp_path_factory):
    """One ONNX/engine cache folder for the whole run (exports are the slow part of backend tests)."""
    return tmp_path_factory.mktemp("partclipseg-cache")


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
