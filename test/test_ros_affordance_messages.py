"""The 3D stage's pieces without DDS: region and marker messages, the target_frame transform, depth pairing checks."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from geometry_msgs.msg import Quaternion, Transform, Vector3
from rclpy.parameter import Parameter
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from partclipseg.geometry.camera import CameraIntrinsics
from partclipseg.geometry.cloud import read_xyz
from partclipseg.geometry.parts import part_geometry
from partclipseg.geometry.rotations import matrix_from_quaternion
from partclipseg.queries import PartQuery
from partclipseg.geometry.regions import AffordanceRegion
from partclipseg.data.raycast import Cylinder, Plane, render
from partclipseg_ros import parameters
from partclipseg_ros.depth_pairing import DepthPairing, NoDepth
from partclipseg_ros.image_conversion import numpy_to_image
from partclipseg_ros.messages import affordance_array, camera_info_message, clear_markers, region_markers
from partclipseg_ros.tf_lookup import Rigid

pytestmark = pytest.mark.ros
K = CameraIntrinsics(fx=300.0, fy=300.0, cx=79.5, cy=59.5, width=160, height=120)


@pytest.fixture(scope="module")
def scene():
    """A rendered handle (cylinder) above a table: depth in metres and the handle's mask."""
    out = render([Plane([0, 0, 0.8], [0, 0, -1]), Cylinder([0.0, 0.0, 0.5], [0.3, -1.0, 0.0], 0.015, 0.12)], K)
    return out.depth, out.mask(1)


@pytest.fixture(scope="module")
def region(scene):
    depth, mask = scene
    return AffordanceRegion(PartQuery("handle", "pot", "grasp"), part_geometry(mask, depth, K), 0.8)


def header(frame="cam_optical", sec=3, nanosec=5):
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


def test_region_message_fields_and_the_cloud_reads_back(region):
    image, out = header(), header("base_link")
    msg = affordance_array([region], image, out)
    assert msg.header == image and len(msg.regions) == 1
    r, g = msg.regions[0], region.geometry
    assert (r.query, r.object, r.part, r.affordance) == ("pot/handle", "pot", "handle", "grasp")
    assert r.pose.header == out and r.points.header == out
    assert [r.pose.pose.position.x, r.pose.pose.position.y, r.pose.pose.position.z] == g.centroid.tolist()
    q = r.pose.pose.orientation
    assert [q.x, q.y, q.z, q.w] == g.quaternion.tolist()
    assert [r.extent.x, r.extent.y, r.extent.z] == g.extent.tolist()
    assert r.score == pytest.approx(0.8 * g.confidence) and r.point_count == g.point_count
    c = r.points
    assert (c.height, c.width, c.point_step, c.row_step, len(c.data)) == (1, g.point_count, 12, 12 * g.point_count,
                                                                         12 * g.point_count)
    np.testing.assert_array_equal(read_xyz(c.data, c.fields, c.point_step, c.width, c.height, c.is_bigendian,
                                           c.row_step), g.points)


def test_markers_axes_and_label_then_delete_all(region):
    frame = header()
    markers = region_markers([region, region], frame).markers
    assert [m.action for m in markers] == [Marker.DELETEALL] + [Marker.ADD] * 4
    assert [(m.ns, m.id) for m in markers[1:]] == [("partclipseg/axes", 0), ("partclipseg/labels", 0),
                                                   ("partclipseg/axes", 1), ("partclipseg/labels", 1)]
    axes, label = markers[1], markers[2]
    g = region.geometry
    ends = np.array([[p.x, p.y, p.z] for p in axes.points])
    np.testing.assert_allclose(ends[0::2], [g.centroid] * 3)
    directions = ends[1::2] - g.centroid
    length = max(0.03, g.extent.max() / 2)
    np.testing.assert_allclose(directions, length * g.rotation.T, atol=1e-12)  # x, y, z axes of the pose
    assert [(c.r, c.g, c.b) for c in axes.colors[::2]] == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    assert label.text == f"pot/handle (grasp) {region.score:.2f}" and label.type == Marker.TEXT_VIEW_FACING
    assert all(m.header == frame for m in markers) and axes.pose.orientation.w == 1.0
    assert [m.action for m in clear_markers(frame).markers] == [Marker.DELETEALL]


def test_rigid_transform_of_a_region(region):
    angle = math.radians(30)
    transform = Transform(translation=Vector3(x=1.0, y=-2.0, z=0.5),
                          rotation=Quaternion(x=0.0, y=0.0, z=math.sin(angle / 2), w=math.cos(angle / 2)))
    rigid = Rigid.from_msg(transform)
    moved = rigid.region(region)
    g, h = region.geometry, moved.geometry
    rz = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    np.testing.assert_allclose(h.centroid, rz @ g.centroid + [1.0, -2.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(h.points, g.points @ rz.T + [1.0, -2.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(h.rotation, rz @ g.rotation, atol=1e-12)
    np.testing.assert_allclose(matrix_from_quaternion(h.quaternion), h.rotation, atol=1e-12)
    np.testing.assert_array_equal(h.extent, g.extent)  # along the pose's own axes: unchanged
    assert h.points.dtype == np.float32 and moved.query == region.query and moved.score == region.score


def test_camera_info_message_gives_back_the_intrinsics():
    info = camera_info_message(K, header())
    assert CameraIntrinsics.from_k(info.k, info.width, info.height) == K
    assert list(info.p[:3]) == [K.fx, 0.0, K.cx] and list(info.d) == [0.0] * 5


def pairing_with(depth, info, frame="cam_optical"):
    sync = DepthPairing(3, "/d", "/ci")
    image = header(frame, sec=10)
    for msg in (depth, info):
        msg.header = header(msg.header.frame_id or "cam_optical", sec=10)
    sync.add_depth(depth)
    sync.add_camera_info(info)
    return sync, image, sync.pair(image)


def test_depth_pairing_gives_the_inputs(scene):
    depth, _ = scene
    sync, image, pairings = pairing_with(numpy_to_image(depth, "32FC1"), camera_info_message(K, Header()))
    inputs = sync.inputs(image, pairings, 0.02, time.monotonic(), depth_scale=0.0)
    np.testing.assert_array_equal(inputs.depth, depth)
    assert inputs.intrinsics == K and inputs.depth_scale is None
    sync, image, pairings = pairing_with(numpy_to_image(depth, "32FC1"), camera_info_message(K, Header()))
    assert sync.inputs(image, pairings, 0.02, time.monotonic(), depth_scale=0.5).depth_scale == 0.5


@pytest.mark.parametrize("case, key, phrase", [
    ("info frame", "camera_info frame", "the camera_info on /ci is in frame 'ir_optical' but the image in "
                                        "'cam_optical': subscribe the camera_info of the colour image"),
    ("mono16 depth", "depth encoding", "depth image on /d rejected: unsupported image encoding 'mono16'; accepted: "
                                       "16UC1, 32FC1"),
])
def test_depth_pairing_refusals(scene, case, key, phrase):
    depth, _ = scene
    depth_msg = (numpy_to_image(depth, "32FC1") if case != "mono16 depth" else
                 numpy_to_image((depth * 1000).astype(np.uint16), "mono16"))
    info = camera_info_message(K, Header(frame_id="ir_optical" if case == "info frame" else ""))
    sync, image, pairings = pairing_with(depth_msg, info)
    with pytest.raises(NoDepth) as err:
        sync.inputs(image, pairings, 0.02, time.monotonic(), depth_scale=0.0)
    assert err.value.key == key and phrase in str(err.value) and str(err.value).endswith("publishing 2D only")


def test_geometry_settings_from_parameters():
    defaults = {spec.name: parameters._python(spec.default) for spec in parameters.SPECS}
    params = parameters.NodeParameters(**defaults)
    settings = params.geometry_settings()
    assert (settings.outlier_mads, settings.min_points, settings.axis_hint) == (5.0, 10, (0.0, -1.0, 0.0))
    with pytest.raises(ValueError, match="axis_hint"):
        params.with_changes([Parameter("axis_hint", value=[0.0, 0.0, 0.0])]).geometry_settings()
