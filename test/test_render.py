"""The ray caster against analytic geometry: depth, index and normals."""
import math

import numpy as np
import pytest

from partclipseg.geometry.camera import CameraError, CameraIntrinsics
from partclipseg.data.raycast import Box, Cylinder, Plane, Sphere, render, shade

K = CameraIntrinsics(fx=300.0, fy=310.0, cx=79.5, cy=59.5, width=160, height=120)


def rotation(axis: str, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    out = np.eye(3)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


def points_of(out, intrinsics=K):
    return intrinsics.rays() * out.depth[..., None].astype(np.float64)


def test_intrinsics_helpers():
    k = CameraIntrinsics.from_k([500, 0, 320, 0, 510, 240, 0, 0, 1], 640, 480)
    assert (k.fx, k.fy, k.cx, k.cy, k.size) == (500, 510, 320, 240, (480, 640))
    np.testing.assert_array_equal(k.as_matrix(), [[500, 0, 320], [0, 510, 240], [0, 0, 1]])
    fov = CameraIntrinsics.from_fov(640, 480, 90.0)
    assert fov.fx == pytest.approx(320.0) and fov.cx == 319.5
    half = k.scaled(0.5)
    assert (half.width, half.height, half.fx, half.cx) == (320, 240, 250, 159.75)
    # project() and rays() are inverse: the ray through a point's pixel, scaled by its depth, is the point
    small = CameraIntrinsics(fx=50.0, fy=40.0, cx=3.5, cy=2.0, width=8, height=5)
    v, u = np.mgrid[0:5, 0:8]
    points = small.rays() * np.linspace(0.5, 3.0, 40).reshape(5, 8, 1)
    np.testing.assert_allclose(small.project(points.reshape(-1, 3)), np.stack([u, v], -1).reshape(-1, 2), atol=1e-9)
    for bad in ([0] * 9, [500, 0, 320, 0, float("nan"), 240, 0, 0, 1]):
        with pytest.raises(CameraError, match="calibrated"):
            CameraIntrinsics.from_k(bad, 640, 480)
    with pytest.raises(CameraError, match="9 elements"):
        CameraIntrinsics.from_k([1, 2, 3], 640, 480)
    with pytest.raises(CameraError, match="positive"):
        CameraIntrinsics(500, 500, 320, 240, 0, 480)


def test_tilted_plane_depth_is_analytic():
    # the plane z = 1 + 0.5 y (metres) seen through every pixel: depth = 1 / (1 - 0.5 ry)
    out = render([Plane(point=[0, 0, 1.0], normal=[0, -0.5, 1.0])], K)
    rays = K.rays()
    np.testing.assert_allclose(out.depth, 1.0 / (1.0 - 0.5 * rays[..., 1]), rtol=1e-6)
    assert np.all(out.index == 0)
    expected = -np.array([0, -0.5, 1.0]) / math.sqrt(1.25)  # facing the camera
    np.testing.assert_allclose(out.normal.reshape(-1, 3), np.tile(expected, (K.width * K.height, 1)), atol=1e-6)


def test_plane_behind_or_parallel_is_not_seen():
    out = render([Plane(point=[0, 0, -1.0], normal=[0, 0, 1]), Plane(point=[0, 1.0, 0], normal=[0, 0, 1])], K)
    # the first is behind the camera; the second (z = 0 through the camera) is seen edge-on by no ray
    assert np.all(out.index == -1) and np.all(out.depth == 0) and np.all(out.normal == 0)


def test_sphere_depth_silhouette_and_normals():
    center, radius = np.array([0.0, 0.0, 1.0]), 0.1
    k = CameraIntrinsics(fx=300.0, fy=300.0, cx=79.5, cy=59.5, width=160, height=120)
    out = render([Sphere(center, radius)], k)
    hit = out.index == 0
    # analytic depth along every ray: nearest root of |t ray - c| = r
    rays = k.rays()[hit]
    a = (rays * rays).sum(1)
    b = rays @ center
    t = (b - np.sqrt(b * b - a * (center @ center - radius**2))) / a
    np.testing.assert_allclose(out.depth[hit], t, rtol=1e-6)
    # silhouette: a disc of radius f tan(asin(r / d)) pixels
    pixels = 300.0 * radius / math.sqrt(1.0 - radius**2)
    assert hit.sum() == pytest.approx(math.pi * pixels**2, rel=0.02)
    points = points_of(out, k)[hit]
    np.testing.assert_allclose(np.linalg.norm(points - center, axis=1), radius, atol=1e-6)
    np.testing.assert_allclose(out.normal[hit], (points - center) / radius, atol=1e-5)
    assert np.all(out.depth[~hit] == 0) and np.all(out.normal[~hit] == 0)


def test_camera_inside_sphere_sees_the_inner_surface():
    out = render([Sphere([0, 0, 0], 2.0)], K)
    rays = K.rays()
    np.testing.assert_allclose(out.depth, 2.0 / np.linalg.norm(rays, axis=-1), rtol=1e-6)
    unit = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    np.testing.assert_allclose(out.normal, -unit, atol=1e-6)  # inward: facing the camera


def test_box_face_on_and_rotated():
    box = Box(center=[0.0, 0.0, 1.0], rotation=np.eye(3), half_extents=[0.1, 0.05, 0.02])
    out = render([box], K)
    hit = out.index == 0
    np.testing.assert_allclose(out.depth[hit], 0.98, rtol=1e-6)
    np.testing.assert_allclose(out.normal[hit], np.tile([0, 0, -1], (hit.sum(), 1)), atol=1e-6)
    uv = K.project(np.array([[-0.1, -0.05, 0.98], [0.1, 0.05, 0.98]]))
    cols = np.flatnonzero(hit.any(0))
    rows = np.flatnonzero(hit.any(1))
    assert cols[0] == math.ceil(uv[0, 0]) and cols[-1] == math.floor(uv[1, 0])
    assert rows[0] == math.ceil(uv[0, 1]) and rows[-1] == math.floor(uv[1, 1])

    rot = rotation("y", 35) @ rotation("x", -25)
    half = np.array([0.06, 0.04, 0.03])
    box = Box(center=[0.02, -0.01, 0.8], rotation=rot, half_extents=half)
    out = render([box], K)
    hit = out.index == 0
    local = (points_of(out)[hit] - box.center) @ rot / half
    np.testing.assert_allclose(np.abs(local).max(1), 1.0, atol=1e-5)  # on the surface
    face = np.abs(local).argmax(1)
    expected = rot[:, face].T * np.sign(local[np.arange(len(face)), face])[:, None]
    np.testing.assert_allclose(out.normal[hit], expected, atol=1e-5)
    assert len(np.unique(face)) == 3  # three faces visible at this pose
    assert np.all((out.normal[hit] * K.rays()[hit]).sum(1) < 0)


def test_cylinder_surface_and_caps():
    cyl = Cylinder(center=[0.01, 0.02, 0.6], axis=[1.0, 0.3, 0.4], radius=0.02, length=0.15)
    out = render([cyl], K)
    hit = out.index == 0
    assert hit.sum() > 500
    relative = points_of(out)[hit] - cyl.center
    axial = relative @ cyl.axis
    radial = np.linalg.norm(relative - axial[:, None] * cyl.axis, axis=1)
    on_side = np.isclose(radial, 0.02, atol=1e-5) & (np.abs(axial) <= 0.075 + 1e-6)
    on_cap = np.isclose(np.abs(axial), 0.075, atol=1e-5) & (radial <= 0.02 + 1e-6)
    assert np.all(on_side | on_cap) and on_cap.sum() > 20 and on_side.sum() > 200
    normal = out.normal[hit]
    cap_normals = normal[on_cap & ~on_side]
    np.testing.assert_allclose(np.abs(cap_normals @ cyl.axis), 1.0, atol=1e-5)
    side_expected = (relative - axial[:, None] * cyl.axis) / 0.02
    np.testing.assert_allclose(normal[on_side & ~on_cap], side_expected[on_side & ~on_cap], atol=1e-4)

    # end-on: only the near cap, a disc at depth z - L/2
    end_on = render([Cylinder(center=[0, 0, 1.0], axis=[0, 0, 1], radius=0.05, length=0.2)], K)
    disc = end_on.index == 0
    np.testing.assert_allclose(end_on.depth[disc], 0.9, rtol=1e-6)
    assert disc.sum() == pytest.approx(math.pi * (300 * 0.05 / 0.9) * (310 * 0.05 / 0.9), rel=0.03)


def test_nearest_primitive_wins_and_index_matches_depth():
    table = Plane(point=[0, 0, 1.2], normal=[0, -0.2, -1])
    ball = Sphere([0.05, 0.0, 0.7], 0.05)
    block = Box([-0.05, 0.0, 0.9], np.eye(3), [0.05, 0.05, 0.05])
    out = render([table, ball, block], K)
    assert set(np.unique(out.index)) == {0, 1, 2}
    for i, primitive in enumerate((table, ball, block)):
        alone = render([primitive], K)
        mine = out.index == i
        np.testing.assert_array_equal(out.depth[mine], alone.depth[mine])
        # where another primitive won, it is nearer than this one
        other = (out.index != i) & (alone.index == 0)
        assert np.all(out.depth[other] <= alone.depth[other])
    np.testing.assert_array_equal(out.mask(1), out.index == 1)


def test_depth_mm_and_shade():
    out = render([Sphere([0, 0, 1.0], 0.1), Plane([0, 0, 1.5], [0, 0, 1])], K)
    mm = out.depth_mm()
    assert mm.dtype == np.uint16
    np.testing.assert_allclose(mm, out.depth * 1000, atol=0.5)
    rgb = shade(out, [(255, 0, 0), (0, 0, 200)], background=(1, 2, 3), ambient=1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (120, 160, 3)
    assert np.all(rgb[out.index == 0] == (255, 0, 0)) and np.all(rgb[out.index == 1] == (0, 0, 200))
    lit = shade(out, [(200, 200, 200), (0, 0, 200)], light=(0, 0, -1), ambient=0.0)
    centre = lit[60, 80, 0]
    edge = lit[out.index == 0][:, 0].min()
    assert centre == 200 and edge < centre  # the sphere faces the lamp at its centre only
    with pytest.raises(ValueError, match="colours"):
        shade(out, [(1, 2, 3)])


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: Box([0, 0, 1], np.diag([1, 1, -1]), [1, 1, 1]), "rotation"),
        (lambda: Box([0, 0, 1], np.eye(3), [1, 0, 1]), "half_extents"),
        (lambda: Sphere([0, 0, 1], -1), "radius"),
        (lambda: Cylinder([0, 0, 1], [0, 0, 0], 1, 1), "non-zero"),
        (lambda: Plane([0, 0], [0, 0, 1]), "3 finite"),
    ],
)
def test_bad_primitives(make, reason):
    with pytest.raises(ValueError, match=reason):
        make()
