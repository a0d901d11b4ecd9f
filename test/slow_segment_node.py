"""The segment node (unconfigured, as `ros2 run` starts it) with a model slower than the camera: its backend
sleeps SLOW_NODE_DELAY_S before each image encoding. For the backpressure test."""
from __future__ import annotations

import os
import sys
import time

import torch

from partclipseg.backends import Backend, BackendOptions, make_backend
from partclipseg.model.network import DecoderOutput, PartCLIPSeg, QueryTensors
from partclipseg_ros.segment_node import main


class SlowBackend(Backend):
    def __init__(self, inner: Backend, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return self.inner.encode_image(pixel_values)

    def decode(self, features: torch.Tensor, query: QueryTensors) -> DecoderOutput:
        return self.inner.decode(features, query)

    def prepare(self, query: QueryTensors) -> QueryTensors:
        return self.inner.prepare(query)

    def describe(self) -> str:
        return f"{self.inner.describe()} + {self.delay * 1e3:.0f} ms sleep"


def slow_backend(name: str, model: PartCLIPSeg, options: BackendOptions) -> Backend:
    return SlowBackend(make_backend(name, model, options), float(os.environ["SLOW_NODE_DELAY_S"]))


if __name__ == "__main__":
    sys.exit(main(make_backend=slow_backend))
