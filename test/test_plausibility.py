"""Plausibility in the core (partclipseg/geometry/plausibility.py): every input of the issue's table, and NaN, inf,
negative and zero depth, on the real Middlebury motorcycle frame (32FC1 metres and 16UC1 millimetres). The same
cases through the node over DDS: test_ros_plausibility.py."""
import math

import numpy as np
import pytest

from partclipseg.errors import CameraError, GeometryInputError
from partclipseg.data.samples import load_depth
from partclipseg.geometry.camera import CameraIntrinsics
from partclipseg.geometry.parts import GeometrySettings, NoGeometry, PartGeometry, part_geometry
from partclipseg.geometry.plausibility import (IMPLAUSIBLE, NO_DEPTH, byte_order_problem, camera_info_intrinsics,
                                               region_problem)

F32 = np.finfo(np.float32)


@pytest.fixture(scope="module")
def motorcycle():
    return load_depth("motorcycle")  # 741x500, 2.1-5.0 m


@pytest.fixture(scope="module")
def mask(motorcycle):
    """A 40x40-pixel patch on the motorcycle (about 10 cm at 2.5 m): a plausible part."""
    m = np.zeros(motorcycle.depth.shape, bool)
    m[200:240, 300:340] = True
    assert np.all(motorcycle.depth[m] > 2.0)
    return m


def test_the_patch_itself_is_a_plausible_part(motorcycle, mask):
    g = part_geometry(mask, motorcycle.depth, motorcycle.intrinsics)
    assert isinstance(g, PartGeometry) and 2.0 < g.centroid[2] < 3.5 and g.extent.max() < 0.3
    millimetres = np.round(motorcycle.depth * 1000).astype(np.uint16)
    assert isinstance(part_geometry(mask, millimetres, motorcycle.intrinsics), PartGeometry)


def _filled(motorcycle, mask, values, dtype=np.float32):
    depth = (motorcycle.depth if dtype == np.float32 else np.round(motorcycle.depth * 1000)).astype(dtype)
    flat = depth[mask]
    flat[:] = np.resize(np.asarray(values, dtype=dtype), flat.size)
    depth[mask] = flat
    return depth


@pytest.mark.parametrize("values, dtype, phrase", [
    ([1e38], np.float32, "1600 farther than depth_max 10 m"),  # row 1: pose z = 1e38 m before
    ([F32.max, F32.min], np.float32, "800 negative, 800 farther than depth_max 10 m"),  # row 2: alternating max/min
    ([F32.max, F32.tiny], np.float32, "800 nearer than depth_min 0.1 m, 800 farther than depth_max 10 m"),
    ([65535], np.uint16, "1600 65535 (saturated or invalid)"),  # row 3: pose at 65.5 m, 11 x 52 x 54 m before
    ([1e-38], np.float32, "1600 subnormal"),  # row 4: pose (0, 0, 0), extent 0 before
    ([np.nan], np.float32, "1600 NaN or infinite"),
    ([np.inf, -np.inf], np.float32, "1600 NaN or infinite"),
    ([-1.5], np.float32, "1600 negative"),
    ([0.0], np.float32, "1600 zero (no depth)"),
    ([0], np.uint16, "1600 zero (no depth)"),
    ([0.05], np.float32, "1600 nearer than depth_min 0.1 m"),
])
def test_depth_that_is_no_measurement_gives_no_region_and_says_why(motorcycle, mask, values, dtype, phrase):
    depth = _filled(motorcycle, mask, values, dtype)
    g = part_geometry(mask, depth, motorcycle.intrinsics)
    assert isinstance(g, NoGeometry) and g.kind == NO_DEPTH and g.valid_pixels == 0
    assert g.reason.startswith("0 of its 1600 pixels have usable depth, at least 10 are needed")
    assert phrase in g.reason, g.reason


def test_depth_range_is_a_setting(motorcycle, mask):
    near = GeometrySettings(depth_max=2.0)  # the motorcycle is farther
    g = part_geometry(mask, motorcycle.depth, motorcycle.intrinsics, settings=near)
    assert isinstance(g, NoGeometry) and "farther than depth_max 2 m" in g.reason
    assert "check depth_scale" in g.reason
    for bad in ({"depth_min": 0.0}, {"depth_min": 3.0, "depth_max": 2.0}, {"depth_max": math.inf},
                {"max_part_extent": 0.0}):
        with pytest.raises(ValueError):
            GeometrySettings(**bad)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_depth_in_the_wrong_byte_order_is_refused(motorcycle, mask, dtype):
    """Row 5: little-endian depth flagged is_bigendian=1 reaches the core byte-swapped (the ROS layer honours the
    flag); before, it gave a 4.0 x 2.6 x 7.0 m region. Correct depth is never refused."""
    depth = motorcycle.depth if dtype == np.float32 else np.round(motorcycle.depth * 1000).astype(np.uint16)
    scale = 1.0 if dtype == np.float32 else 0.001
    assert byte_order_problem(depth, scale, 0.1, 10.0) is None
    with pytest.raises(GeometryInputError, match=r"reads as depth only with its bytes swapped \(\d+% .* as sent, "
                                                 r"\d+% swapped\): its byte order flag \(is_bigendian\)"):
        part_geometry(mask, depth.byteswap(), motorcycle.intrinsics)


def _k(fx=525.0, fy=525.0, cx=319.5, cy=239.5, k8=1.0):
    return [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, k8]


@pytest.mark.parametrize("fields, phrase", [
    ({"k": _k(fx=1e-30, fy=1e-30)}, "horizontal field of view is 180 degrees (fx = 1e-30 px"),  # row 6
    ({"k": _k(fx=1e30, fy=1e30)}, "horizontal field of view is 3.667e-26 degrees"),
    ({"k": _k(cx=-1e9)}, "principal point cx = -1e+09 px lies outside the 640-pixel image"),  # row 7
    ({"k": _k(cy=480.0)}, "principal point cy = 480 px lies outside the 480-pixel image"),
    ({"k": _k(k8=0.0)}, "K's last row must be (0, 0, 1), got (0, 0, 0)"),  # row 8
    ({"d": [1e9] * 1000, "distortion_model": "plumb_bob"}, "plumb_bob has 5 coefficients, but D has 1000"),
    ({"d": [1e9] * 1000, "distortion_model": "x" * 500}, "unknown distortion_model"),
    ({"d": [0.1, 0.0, 0.0, 0.0, math.nan], "distortion_model": "plumb_bob"}, "D holds NaN"),
    ({"binning_x": 2**32 - 1}, "binning 4294967295x0 leaves no pixel of the 640x480 image"),
    ({"roi": (600, 0, 100, 100)}, "the ROI (x 600, y 0, 100x100) does not lie inside the 640x480 calibration"),
    ({"k": [0.0] * 9}, "camera intrinsics need finite fx, fy > 0"),
    ({"k": _k()[:8]}, "K must be 9 finite numbers"),
    ({"k": _k(fx=math.nan)}, "K must be 9 finite numbers"),
    ({"k": [525.0, 3.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0]}, "skew"),
])
def test_implausible_camera_info_is_refused(fields, phrase):
    args = {"k": _k(), "width": 640, "height": 480, **fields}
    with pytest.raises(CameraError) as err:
        camera_info_intrinsics(**args)
    assert phrase in str(err.value), str(err.value)


def test_plausible_camera_info_binning_and_roi_are_understood():
    full = CameraIntrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)
    assert camera_info_intrinsics(_k(), 640, 480) == full
    for d, model in (([], "plumb_bob"), ([0.1, -0.2, 0.0, 0.0, 0.05], "plumb_bob"), ([0.0] * 8, "rational_polynomial"),
                     ([0.0] * 4, "equidistant"), ([], "")):
        assert camera_info_intrinsics(_k(), 640, 480, d, model) == full  # distortion is not applied (rectified)
    assert camera_info_intrinsics(_k(), 640, 480, binning_x=2, binning_y=2) == full.scaled(0.5)
    crop = camera_info_intrinsics(_k(), 640, 480, roi=(100, 50, 320, 240))
    assert crop == CameraIntrinsics(525.0, 525.0, 219.5, 189.5, 320, 240)
    # a pixel's ray is the same in the full image and in the cropped, binned one
    binned = camera_info_intrinsics(_k(), 640, 480, binning_x=2, binning_y=2, roi=(100, 50, 320, 240))
    u, v = 10, 20  # the centre of binned pixel (10, 20) is full-resolution (100 + 2 * 10 + 0.5, 50 + 2 * 20 + 0.5)
    np.testing.assert_allclose(binned.rays()[v, u], [(120.5 - 319.5) / 525, (90.5 - 239.5) / 525, 1.0])


def test_implausible_intrinsics_given_directly_are_refused_by_the_core(motorcycle, mask):
    """Library users who build CameraIntrinsics themselves get the same refusal as the node (pose at 1.7e31 m
    and x = 534,586 m before)."""
    k = motorcycle.intrinsics
    for bad, phrase in ((CameraIntrinsics(1e-30, 1e-30, k.cx, k.cy, k.width, k.height), "field of view"),
                        (CameraIntrinsics(k.fx, k.fy, -1e9, k.cy, k.width, k.height), "principal point cx")):
        with pytest.raises(GeometryInputError, match=f"not a plausible pinhole camera: .*{phrase}"):
            part_geometry(mask, motorcycle.depth, bad)


def test_regions_larger_than_max_part_extent_are_refused(motorcycle):
    wide = np.zeros(motorcycle.depth.shape, bool)
    wide[100:400, 50:700] = True  # most of the scene: motorcycle and the wall behind, several metres
    g = part_geometry(wide, motorcycle.depth, motorcycle.intrinsics)
    assert isinstance(g, NoGeometry) and g.kind == IMPLAUSIBLE
    assert "larger than max_part_extent 1 m: the mask spills over the scene" in g.reason
    allowed = part_geometry(wide, motorcycle.depth, motorcycle.intrinsics,
                            settings=GeometrySettings(max_part_extent=10.0))
    assert isinstance(allowed, PartGeometry) and allowed.extent.max() > 1.0
    assert "non-finite" in region_problem(np.array([0.0, 0.0, np.nan]), np.zeros(3), 0.1, 10.0, 1.0)
    assert "outside depth_min..depth_max" in region_problem(np.array([0.0, 0.0, 20.0]), np.zeros(3), 0.1, 10.0, 1.0)
    assert region_problem(np.array([0.0, 0.0, 2.0]), np.full(3, 0.5), 0.1, 10.0, 1.0) is None
