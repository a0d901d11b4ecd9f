"""Part geometry against scenes with known truth, rendered by partclipseg.data.raycast, and against real stereo depth."""
import math

import numpy as np
import pytest

from partclipseg.geometry.camera import CameraError, CameraIntrinsics, disparity_to_depth
from partclipseg.geometry.cloud import read_xyz
from partclipseg.geometry.parts import (
    GeometryInputError,
    GeometrySettings,
    NoGeometry,
    PartGeometry,
    label_geometries,
    part_geometry,
)
from partclipseg.geometry.plausibility import NO_DEPTH, TOO_SMALL
from partclipseg.geometry.rotations import grasp_frame, matrix_from_quaternion, quaternion_from_matrix
from partclipseg.postprocess import PartResult
from partclipseg.queries import PartQuery
from partclipseg.geometry.regions import affordance_regions
from partclipseg.data.raycast import Box, Cylinder, Plane, render
from partclipseg.data.samples import load_depth

K = CameraIntrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=640, height=480)  # a Kinect-like 640x480
RADIUS, HANDLE_LENGTH = 0.012, 0.10
BLADE_HALF = np.array([0.075, 0.015, 0.001])  # length, width, thickness (half sizes)


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def knife_scene(center, axis, blade_normal_hint):
    """A knife: a cylinder handle and a thin box blade continuing along ``axis``, above a table 0.3 m behind."""
    axis = unit(axis)
    handle_center = np.asarray(center, dtype=np.float64)
    blade_center = handle_center + axis * (HANDLE_LENGTH / 2 + BLADE_HALF[0])
    normal = unit(np.asarray(blade_normal_hint) - (np.asarray(blade_normal_hint) @ axis) * axis)
    rotation = np.column_stack([axis, np.cross(normal, axis), normal])  # length, width, thickness
    handle = Cylinder(handle_center, axis, RADIUS, HANDLE_LENGTH)
    blade = Box(blade_center, rotation, BLADE_HALF)
    table = Plane([0, 0, handle_center[2] + 0.3], [0, -0.2, -1])
    return [table, handle, blade], handle, blade


def angle_deg(a, b):
    """Angle between two undirected axes."""
    return math.degrees(math.acos(min(1.0, abs(float(unit(a) @ unit(b))))))


def visible_handle_centroid(handle):
    """Centroid of a cylinder's visible surface seen side-on: pi/4 r in front of the axis (docs/geometry.md)."""
    toward = -handle.center - (-handle.center @ handle.axis) * handle.axis
    return handle.center + math.pi / 4 * handle.radius * unit(toward)


def check_frame(g: PartGeometry):
    r = g.rotation
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)
    assert r[:, 0] @ -g.centroid > 0  # x towards the camera
    assert r[:, 2] @ np.array([0.0, -1.0, 0.0]) >= 0  # z signed by the default hint (up in the image)
    np.testing.assert_allclose(reference_matrix(g.quaternion), r, atol=1e-9)


def reference_matrix(q):
    """Rotation matrix of a unit quaternion (x, y, z, w), written out independently of the library."""
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


# handle axis perpendicular to the line of sight (side-on: only the curved side is visible, the analytic
# visible-surface centroid holds), in two image directions; and one pose tilted 20 degrees out of that plane
SIDE_ON = [
    ((0.02, 0.03, 0.50), unit(np.cross([0.02, 0.03, 0.50], [0, 0, 1]))),
    ((-0.05, 0.01, 0.45), unit(np.cross([-0.05, 0.01, 0.45], [1, 0.5, 0]))),
]


@pytest.mark.parametrize("center, axis", SIDE_ON)
def test_knife_side_on_matches_truth(center, axis):
    primitives, handle, blade = knife_scene(center, axis, blade_normal_hint=-np.asarray(center))
    out = render(primitives, K)
    h = part_geometry(out.mask(1), out.depth, K)
    b = part_geometry(out.mask(2), out.depth, K)
    assert isinstance(h, PartGeometry) and isinstance(b, PartGeometry)
    assert h.point_count == out.mask(1).sum() and b.point_count == out.mask(2).sum()
    # handle: centroid of the visible surface, the long axis, length and diameter
    assert np.linalg.norm(h.centroid - visible_handle_centroid(handle)) < 0.005
    assert angle_deg(h.axis, handle.axis) < 3
    np.testing.assert_allclose(h.extent[1:], [2 * RADIUS, HANDLE_LENGTH], rtol=0.10)
    # relief: at most r; the last pixel centre before the silhouette sees the surface well in front of it
    assert 0.7 * RADIUS < h.extent[0] <= RADIUS
    # blade: centroid of its front face, the long axis, length and width
    front = blade.center + BLADE_HALF[2] * blade.rotation[:, 2] * np.sign(-blade.center @ blade.rotation[:, 2])
    assert np.linalg.norm(b.centroid - front) < 0.005
    assert angle_deg(b.axis, blade.rotation[:, 0]) < 3
    np.testing.assert_allclose(b.extent[1:], [2 * BLADE_HALF[1], 2 * BLADE_HALF[0]], rtol=0.10)
    assert b.extent[0] < 0.004  # a flat blade facing the camera has almost no relief
    for g in (h, b):
        check_frame(g)
        assert g.confidence > 0.9


def test_knife_tilted_out_of_the_image_plane():
    center = np.array([0.0, 0.02, 0.5])
    side = unit(np.cross(center, [0, 0, 1]))
    axis = unit(math.cos(math.radians(20)) * side + math.sin(math.radians(20)) * unit(center))
    primitives, handle, blade = knife_scene(center, axis, blade_normal_hint=-center)
    out = render(primitives, K)
    h = part_geometry(out.mask(1), out.depth, K)
    b = part_geometry(out.mask(2), out.depth, K)
    # the near cap is visible now: the side-on centroid model still holds within 5 mm
    assert np.linalg.norm(h.centroid - visible_handle_centroid(handle)) < 0.005
    assert angle_deg(h.axis, axis) < 3 and angle_deg(b.axis, axis) < 3
    assert h.extent[2] == pytest.approx(HANDLE_LENGTH, rel=0.10)
    assert b.extent[2] == pytest.approx(2 * BLADE_HALF[0], rel=0.10)


def test_millimetres_metres_and_scale():
    primitives, handle, _ = knife_scene(*SIDE_ON[0], blade_normal_hint=[0, 0, -1])
    out = render(primitives, K)
    mask = out.mask(1)
    metres = part_geometry(mask, out.depth, K)
    millimetres = part_geometry(mask, out.depth_mm(), K)  # 16UC1: 0.001 m per unit by default
    assert np.linalg.norm(millimetres.centroid - metres.centroid) < 0.001
    assert angle_deg(millimetres.axis, metres.axis) < 1
    as_float_mm = part_geometry(mask, out.depth * 1000.0, K, depth_scale=0.001)  # a float image in mm
    np.testing.assert_allclose(as_float_mm.centroid, metres.centroid, atol=1e-6)
    wrong = part_geometry(mask, out.depth_mm(), K, depth_scale=1.0)  # mm read as metres: 1000x too far
    assert isinstance(wrong, NoGeometry) and wrong.kind == NO_DEPTH and wrong.valid_pixels == 0
    assert "farther than depth_max 10 m" in wrong.reason and "check depth_scale" in wrong.reason
    far = GeometrySettings(depth_max=1000.0, max_part_extent=100.0)  # a range that lets the wrong scale through
    wrong = part_geometry(mask, out.depth_mm(), K, depth_scale=1.0, settings=far)
    assert wrong.centroid[2] == pytest.approx(1000 * metres.centroid[2], rel=0.01)


def test_invalid_depth_is_dropped_and_lowers_confidence():
    primitives, handle, _ = knife_scene(*SIDE_ON[0], blade_normal_hint=[0, 0, -1])
    out = render(primitives, K)
    mask = out.mask(1)
    clean = part_geometry(mask, out.depth, K)
    depth = out.depth.copy()
    rows, cols = np.nonzero(mask)
    rng = np.random.default_rng(0)
    holes = rng.permutation(len(rows))
    bad = holes[: len(rows) // 2]
    depth[rows[bad[0::3]], cols[bad[0::3]]] = np.nan
    depth[rows[bad[1::3]], cols[bad[1::3]]] = 0.0
    depth[rows[bad[2::3]], cols[bad[2::3]]] = np.inf
    holed = part_geometry(mask, depth, K)
    assert holed.valid_pixels == len(rows) - len(bad) == holed.point_count
    assert holed.mask_pixels == len(rows)
    assert np.all(np.isfinite(holed.points))
    assert np.linalg.norm(holed.centroid - clean.centroid) < 0.002
    assert angle_deg(holed.axis, clean.axis) < 2
    assert holed.confidence < 0.6 * clean.confidence  # half the mask has no depth

    depth[mask] = np.nan
    none = part_geometry(mask, depth, K)
    assert isinstance(none, NoGeometry) and none.valid_pixels == 0 and none.kind == NO_DEPTH
    assert f"0 of its {len(rows)} pixels have usable depth" in none.reason and "NaN or infinite" in none.reason
    mm = out.depth_mm()
    mm[mask] = 0
    assert isinstance(part_geometry(mask, mm, K), NoGeometry)


def test_background_bleeding_into_the_mask_is_rejected():
    primitives, handle, _ = knife_scene(*SIDE_ON[0], blade_normal_hint=[0, 0, -1])
    out = render(primitives, K)
    mask = out.mask(1)
    # a sloppy mask: the handle grown by 4 pixels onto the table 0.3 m behind (not onto the blade)
    grown = mask.copy()
    for shift in range(1, 5):
        for axis in (0, 1):
            grown |= np.roll(mask, shift, axis) | np.roll(mask, -shift, axis)
    grown &= out.index != 2
    table = grown & (out.index == 0)
    assert table.sum() > 0.25 * mask.sum()
    g = part_geometry(grown, out.depth, K)
    assert g.point_count == mask.sum()  # exactly the handle's pixels survive
    assert np.linalg.norm(g.centroid - visible_handle_centroid(handle)) < 0.005
    assert angle_deg(g.axis, handle.axis) < 3
    assert g.confidence < part_geometry(mask, out.depth, K).confidence


def test_empty_one_pixel_and_tiny_masks():
    out = render(knife_scene(*SIDE_ON[0], blade_normal_hint=[0, 0, -1])[0], K)
    empty = part_geometry(np.zeros(K.size, bool), out.depth, K)
    assert isinstance(empty, NoGeometry) and empty.mask_pixels == 0 and "empty" in empty.reason
    one = np.zeros(K.size, bool)
    one[240, 320] = True
    single = part_geometry(one, out.depth, K)
    assert isinstance(single, NoGeometry) and (single.mask_pixels, single.kind) == (1, TOO_SMALL)
    assert "at least 10" in single.reason
    # three points in a row: a line has an axis; with min_points=3 it is a (degenerate but defined) pose
    line = np.zeros(K.size, bool)
    line[240, 320:323] = True
    g = part_geometry(line, out.depth, K, settings=GeometrySettings(min_points=3))
    assert isinstance(g, PartGeometry) and np.all(np.isfinite(g.rotation)) and np.all(np.isfinite(g.quaternion))
    assert angle_deg(g.axis, [1, 0, 0]) < 5
    labelled = part_geometry(line.astype(np.uint8) * 7, out.depth, K, settings=GeometrySettings(min_points=3))
    assert labelled.point_count == 3  # any nonzero value marks the part


@pytest.mark.parametrize(
    "mask_shape, depth, intrinsics, scale, reason",
    [
        ((480, 640), np.zeros((480, 641), np.float32), K, None, "registered"),
        ((480, 640), np.zeros((480, 640), np.float32), None, None, "camera_info"),
        ((480, 640), np.zeros((480, 640), np.float32), K.scaled(0.5), None, "camera_info is for 320x240"),
        ((480, 640), np.zeros((480, 640), np.int32), K, None, "16UC1"),
        ((480, 640), np.zeros((480, 640, 3), np.float32), K, None, "single-channel"),
        ((480, 640), np.zeros((480, 640), np.uint16), K, -1.0, "depth_scale"),
        ((480, 640), np.zeros((480, 640), np.uint16), K, "mm", "depth_scale"),
        ((480, 640, 2), np.zeros((480, 640), np.uint16), K, None, "2D"),
    ],
)
def test_inputs_that_do_not_fit_raise_one_clear_error(mask_shape, depth, intrinsics, scale, reason):
    with pytest.raises(GeometryInputError, match=reason):
        part_geometry(np.ones(mask_shape, bool), depth, intrinsics, depth_scale=scale)


def test_uncalibrated_camera_info_is_a_camera_error():
    with pytest.raises(CameraError):
        CameraIntrinsics.from_k([0.0] * 9, 640, 480)


def test_label_image_gives_the_same_as_single_masks():
    primitives, _, _ = knife_scene(*SIDE_ON[1], blade_normal_hint=[0, 0, -1])
    out = render(primitives, K)
    labels = np.zeros(K.size, np.uint8)
    labels[out.mask(2)] = 1  # query 0: blade
    labels[out.mask(1)] = 3  # query 2: handle; query 1 absent
    results = label_geometries(labels, 3, out.depth_mm(), K)
    assert isinstance(results[1], NoGeometry) and results[1].mask_pixels == 0
    for value, result in ((1, results[0]), (3, results[2])):
        single = part_geometry(labels == value, out.depth_mm(), K)
        np.testing.assert_array_equal(result.points, single.points)
        np.testing.assert_array_equal(result.rotation, single.rotation)
    with pytest.raises(GeometryInputError, match="integer"):
        label_geometries(labels.astype(np.float32), 3, out.depth, K)


def test_affordance_regions_of_a_segmentation_result():
    primitives, handle, _ = knife_scene(*SIDE_ON[0], blade_normal_hint=[0, 0, -1])
    out = render(primitives, K)
    depth = out.depth.copy()
    labels = np.zeros(K.size, np.uint8)
    labels[out.mask(1)] = 1
    labels[out.mask(2)] = 2
    spot = np.zeros(K.size, bool)
    spot[5:9, 5:9] = True  # a 16-pixel "part" where the camera has no depth
    labels[spot] = 3
    depth[spot] = 0
    parts = [
        PartResult(PartQuery("handle", "knife", "grasp"), 1, 0.8, int(out.mask(1).sum()), (0, 0, 1, 1)),
        PartResult(PartQuery("blade", "knife", "avoid"), 2, 0.5, int(out.mask(2).sum()), (0, 0, 1, 1)),
        PartResult(PartQuery("spout", "kettle"), 3, 0.4, 16, (5, 5, 4, 4)),
        PartResult(PartQuery("lid", "pot", "open"), 4, 0.0, 0, (0, 0, 0, 0)),
    ]
    regions, skipped = affordance_regions(parts, labels, depth, K)
    assert [r.query.name for r in regions] == ["knife/handle", "knife/blade"]
    assert [r.affordance for r in regions] == ["grasp", "avoid"]
    assert [(s.query.name, s.kind) for s in skipped] == [("kettle/spout", NO_DEPTH)]
    assert "0 of its 16 pixels have usable depth" in skipped[0].reason and "16 zero (no depth)" in skipped[0].reason
    handle_region = regions[0]
    assert handle_region.score == pytest.approx(0.8 * handle_region.geometry.confidence)
    cloud = handle_region.cloud()
    back = read_xyz(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    np.testing.assert_array_equal(back, handle_region.geometry.points)
    assert cloud.row_step == 12 * handle_region.geometry.point_count


def test_grasp_frame_conventions_and_degenerate_axes():
    # axis along the line of sight: x cannot point at the camera; any x orthogonal to z is used (image up)
    r = grasp_frame(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(r, np.column_stack([[0, -1, 0], [1, 0, 0], [0, 0, 1]]), atol=1e-12)
    # z follows the hint; a horizontal axis (perpendicular to the default hint) is signed towards +x
    r = grasp_frame(np.array([0.1, 0.0, 1.0]), np.array([-1.0, 0.0, 0.0]))
    np.testing.assert_allclose(r[:, 2], [1, 0, 0])
    r = grasp_frame(np.array([0.1, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), axis_hint=(-1.0, 0.0, 0.0))
    np.testing.assert_allclose(r[:, 2], [-1, 0, 0])
    assert r[:, 0] @ -np.array([0.1, 0.0, 1.0]) > 0
    np.testing.assert_allclose(np.cross(r[:, 0], r[:, 1]), r[:, 2], atol=1e-12)


def test_quaternion_of_many_rotations_and_back():
    rng = np.random.default_rng(1)
    rotations = [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    for _ in range(200):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        rotations.append(q * np.sign(np.linalg.det(q)))
    for rotation in rotations:
        quaternion = quaternion_from_matrix(rotation)
        assert quaternion[3] >= 0 and np.linalg.norm(quaternion) == pytest.approx(1.0)
        np.testing.assert_allclose(matrix_from_quaternion(quaternion), rotation, atol=1e-9)
        np.testing.assert_allclose(reference_matrix(quaternion), rotation, atol=1e-9)


def test_disparity_to_depth():
    d = np.array([[10.0, 0.0, np.nan], [np.inf, -5.0, 90.0]])
    z = disparity_to_depth(d, focal_px=500.0, baseline_m=0.1, doffs_px=5.0)
    np.testing.assert_allclose(z, [[50 / 15, 50 / 5, 0], [0, 0, 50 / 95]], rtol=1e-6)
    assert z.dtype == np.float32


def test_motorcycle_depth_is_real_and_sane():
    sample = load_depth("motorcycle")
    assert sample.depth.dtype == np.float32 and sample.depth.shape == sample.rgb.shape[:2] == sample.intrinsics.size
    valid = sample.depth > 0
    assert valid.mean() > 0.9
    # the Middlebury scene: a motorcycle about 2-3 m from the camera in front of a wall about 5 m away
    assert 2.0 < sample.depth[valid].min() and sample.depth.max() < 5.5
    assert 2.3 < np.median(sample.depth[valid]) < 3.2
    # a patch on the motorcycle gives a pose from real depth
    patch = np.zeros(sample.intrinsics.size, bool)
    patch[200:260, 330:390] = True
    g = part_geometry(patch, sample.depth, sample.intrinsics)
    assert isinstance(g, PartGeometry) and g.point_count > 0.8 * patch.sum()
    assert g.centroid[2] == pytest.approx(np.median(sample.depth[patch & valid]), rel=0.1)
    # a 60-pixel patch at 2-3 m spans 60 * z / f metres
    assert g.extent[2] == pytest.approx(60 * math.sqrt(2) * g.centroid[2] / sample.intrinsics.fx, rel=0.5)
    with pytest.raises(KeyError, match="no depth"):
        load_depth("coffee")
