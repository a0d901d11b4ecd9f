"""Sample images with default queries: real photos that ship inside the scikit-image wheel (no download), and
one rendered kitchen scene with exact depth, made of the objects the bundled model knows."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..geometry.camera import CameraIntrinsics, disparity_to_depth
from ..defaults import BUNDLED_OBJECTS

if TYPE_CHECKING:
    from .dataset import PartSample


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
        Sample("kitchen", "pot/lid; pot/handle; spatula/handle", "a rendered kitchen scene (synthetic, exact "
               "depth) of objects the bundled model knows", lambda: _kitchen().rgb),
    )
}


def load_sample(name: str) -> np.ndarray:
    """The RGB image of a bundled sample (see :data:`SAMPLES`)."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; bundled samples: {', '.join(SAMPLES)}")
    return SAMPLES[name].load()


@dataclass(frozen=True)
class DepthSample:
    """A bundled frame with real depth: RGB, aligned depth and the intrinsics of both."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres (32FC1), 0 = unknown
    intrinsics: CameraIntrinsics


# Middlebury 2014 "Motorcycle" (Scharstein et al., GCPR 2014), left camera, as scikit-image ships it: downscaled 4x
# by block averaging, with the calibration in its docstring (full-resolution calib.txt divided by 4): focal length
# 994.978 px, principal point (311.193, 254.877), doffs 31.086 px, baseline 193.001 mm. Dividing a principal point
# by 4 ignores that pixel centres are at integers; block k of 4 pixels has its centre at 4k + 1.5, so the exact
# principal point is (c + 0.5) / 4 - 0.5 of the full-resolution one, i.e. 0.375 px less. The focal length and doffs
# (a difference of two principal points) scale by exactly 1/4.
_MOTORCYCLE_FOCAL = 994.978
_MOTORCYCLE_PRINCIPAL = (311.193 - 0.375, 254.877 - 0.375)
_MOTORCYCLE_DOFFS = 31.086
_MOTORCYCLE_BASELINE = 0.193001


# A scene of the synthetic generator (docs/training.md) that the bundled model never saw (it trained on the
# generator's seed-0 stream): picked by its ground truth for three well visible handles, before the model existed.
_KITCHEN_SEED = 1013


@lru_cache(maxsize=1)
def kitchen_scene() -> PartSample:
    """The kitchen sample with its labels (ids of ``kitchen_classes(objects=BUNDLED_OBJECTS)``)."""
    from .synth import SceneConfig, kitchen_classes, make_scene

    return make_scene(np.random.default_rng(_KITCHEN_SEED), kitchen_classes(objects=BUNDLED_OBJECTS), "kitchen",
                      SceneConfig(640, 480, min_objects=3, max_objects=3))


def _kitchen() -> DepthSample:
    scene = kitchen_scene()
    return DepthSample(rgb=scene.image, depth=scene.depth, intrinsics=scene.intrinsics)


def load_depth(name: str) -> DepthSample:
    """RGB, depth and intrinsics of a sample with depth: ``motorcycle`` (ground-truth stereo) or ``kitchen``
    (rendered)."""
    if name == "kitchen":
        return _kitchen()
    if name != "motorcycle":
        raise KeyError(f"sample {name!r} has no depth; samples with depth: motorcycle, kitchen")
    left, _, disparity = _data().stereo_motorcycle()
    height, width = disparity.shape
    intrinsics = CameraIntrinsics(fx=_MOTORCYCLE_FOCAL, fy=_MOTORCYCLE_FOCAL, cx=_MOTORCYCLE_PRINCIPAL[0],
                                  cy=_MOTORCYCLE_PRINCIPAL[1], width=width, height=height)
    depth = disparity_to_depth(disparity, _MOTORCYCLE_FOCAL, _MOTORCYCLE_BASELINE, _MOTORCYCLE_DOFFS)
    return DepthSample(rgb=np.ascontiguousarray(left), depth=depth, intrinsics=intrinsics)
