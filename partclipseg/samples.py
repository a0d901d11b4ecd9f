"""Real sample photos that ship inside the scikit-image wheel (no download), with default queries."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Sample:
    name: str
    queries: str
    description: str
    _load: Callable[[], np.ndarray]

    def load(self) -> np.ndarray:
        """HxWx3 uint8 RGB."""
        return np.ascontiguousarray(self._load())


def _data():  # imported lazily: scikit-image is only needed for the samples
    from skimage import data

    return data


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample("coffee", "cup/handle; cup/body; saucer/rim", "a coffee cup with a handle on a saucer",
               lambda: _data().coffee()),
        Sample("chelsea", "cat/head; cat/ear; cat/eye", "a cat", lambda: _data().chelsea()),
        Sample("motorcycle", "motorbike/wheel; motorbike/saddle; motorbike/headlight",
               "left view of the Middlebury motorcycle stereo pair", lambda: _data().stereo_motorcycle()[0]),
        Sample("rocket", "rocket/body; rocket/engine", "a rocket on its launch pad", lambda: _data().rocket()),
    )
}


def load_sample(name: str) -> np.ndarray:
    """The RGB image of a bundled sample (see :data:`SAMPLES`)."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; bundled samples: {', '.join(SAMPLES)}")
    return SAMPLES[name].load()
