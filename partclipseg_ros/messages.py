"""Core results -> partclipseg_ros messages. Every message carries the source image's header."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, Vector3
from sensor_msgs.msg import CameraInfo, PointCloud2, PointField, RegionOfInterest
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from partclipseg.geometry.camera import CameraIntrinsics
from partclipseg.geometry.cloud import PackedCloud, pack_labelled
from partclipseg.postprocess import PartResult, Result
from partclipseg.queries import PartQuery
from partclipseg.geometry.regions import AffordanceRegion as Region
from partclipseg.overlay import UNKNOWN_MARK

from .defaults import MARKER_AXIS_MIN_M, MARKER_LINE_WIDTH_M, MARKER_TEXT_HEIGHT_M
from .image_conversion import numpy_to_image
from .msg import AffordanceArray, AffordanceRegion, PartMask, PartSegmentation

MARKER_NAMESPACES = ("partclipseg/axes", "partclipseg/labels")
_AXIS_COLOURS = (ColorRGBA(r=1.0, a=1.0), ColorRGBA(g=1.0, a=1.0), ColorRGBA(b=1.0, a=1.0))  # x red, y green, z blue


def part_mask(labels: np.ndarray, part: PartResult, header: Header) -> PartMask:
    """One query's mask, cropped to its ROI (mono8, 255 inside); an empty part has a 0x0 mask."""
    x, y, width, height = part.roi
    crop = (labels[y:y + height, x:x + width] == part.label).astype(np.uint8) * np.uint8(255)
    query = part.query
    return PartMask(
        query=query.name,
        object=query.object or "",
        part=query.part,
        score=float(part.score),
        pixel_count=int(part.pixel_count),
        roi=RegionOfInterest(x_offset=x, y_offset=y, width=width, height=height, do_rectify=False),
        mask=numpy_to_image(crop, "mono8", header),
        unknown_query=bool(part.unknown_query),
    )


def segmentation_message(result: Result, header: Header) -> PartSegmentation:
    """The PartSegmentation of one frame: label image at source resolution plus one PartMask per query."""
    return PartSegmentation(
        header=header,
        queries=[q.name for q in result.queries],
        labels=numpy_to_image(result.labels, "mono8", header),
        parts=[part_mask(result.labels, part, header) for part in result.parts],
    )


def empty_segmentation(height: int, width: int, header: Header) -> PartSegmentation:
    """The answer while no query is active: no queries, every pixel 0."""
    labels = np.zeros((height, width), dtype=np.uint8)
    return PartSegmentation(header=header, queries=[], labels=numpy_to_image(labels, "mono8", header), parts=[])


def point_cloud(cloud: PackedCloud, header: Header) -> PointCloud2:
    """A packed cloud (``partclipseg.geometry.cloud``) as PointCloud2."""
    msg = PointCloud2(
        header=header,
        height=cloud.height,
        width=cloud.width,
        fields=[PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in cloud.fields],
        is_bigendian=cloud.is_bigendian,
        point_step=cloud.point_step,
        row_step=cloud.row_step,
        is_dense=cloud.is_dense,
    )
    msg.data = cloud.data
    return msg


def part_cloud(regions: Sequence[Region], label_of: Mapping[PartQuery, int], header: Header) -> PointCloud2:
    """One labelled cloud of a frame's regions: x, y, z (their points, in ``header``'s frame), ``label`` = the part's
    value in the label image (query index + 1) and ``score`` = its region's score, for every point."""
    points = [r.geometry.points for r in regions]
    counts = [len(p) for p in points]
    labels = np.repeat(np.array([label_of[r.query] for r in regions], dtype=np.uint32), counts)
    scores = np.repeat(np.array([r.score for r in regions], dtype=np.float32), counts)
    stacked = np.concatenate(points) if points else np.zeros((0, 3), dtype=np.float32)
    return point_cloud(pack_labelled(stacked, labels, scores), header)


def _point(v: np.ndarray) -> Point:
    return Point(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def region_message(region: Region, header: Header) -> AffordanceRegion:
    """One part's region; ``header`` = the frame its pose and points are in, with the image's stamp."""
    g, query = region.geometry, region.query
    x, y, z, w = (float(v) for v in g.quaternion)
    return AffordanceRegion(
        query=query.name,
        object=query.object or "",
        part=query.part,
        affordance=region.affordance,
        pose=PoseStamped(header=header, pose=Pose(position=_point(g.centroid),
                                                  orientation=Quaternion(x=x, y=y, z=z, w=w))),
        extent=Vector3(x=float(g.extent[0]), y=float(g.extent[1]), z=float(g.extent[2])),
        score=region.score,
        point_count=g.point_count,
        points=point_cloud(region.cloud(), header),
        unknown_query=region.unknown_query,
    )


def affordance_array(regions: Sequence[Region], image_header: Header, frame: Header) -> AffordanceArray:
    """A frame's regions: the array carries the image header, poses and clouds ``frame`` (output frame, image stamp)."""
    return AffordanceArray(header=image_header, regions=[region_message(r, frame) for r in regions])


def clear_markers(frame: Header) -> MarkerArray:
    """Only DELETEALL: removes the previous frame's markers (a frame without 3D)."""
    return MarkerArray(markers=[Marker(header=frame, action=Marker.DELETEALL)])


def region_markers(regions: Sequence[Region], frame: Header) -> MarkerArray:
    """DELETEALL, then per region an axes triad (LINE_LIST: x red, y green, z blue) and a text label at the z tip.

    Ids are the region's index in each namespace; the leading DELETEALL removes parts gone since the last frame.
    """
    markers = clear_markers(frame).markers
    identity = Quaternion(w=1.0)
    for index, region in enumerate(regions):
        g = region.geometry
        length = max(MARKER_AXIS_MIN_M, float(g.extent.max()) / 2)
        origin = _point(g.centroid)
        axes = Marker(header=frame, ns=MARKER_NAMESPACES[0], id=index, type=Marker.LINE_LIST, action=Marker.ADD,
                      pose=Pose(orientation=identity), scale=Vector3(x=MARKER_LINE_WIDTH_M))
        for k, colour in enumerate(_AXIS_COLOURS):
            axes.points += [origin, _point(g.centroid + length * g.rotation[:, k])]
            axes.colors += [colour, colour]
        affordance = f" ({region.affordance})" if region.affordance else ""
        affordance += f" {UNKNOWN_MARK}" if region.unknown_query else ""
        label = Marker(header=frame, ns=MARKER_NAMESPACES[1], id=index, type=Marker.TEXT_VIEW_FACING,
                       action=Marker.ADD, pose=Pose(position=_point(g.centroid + length * g.rotation[:, 2]),
                                                    orientation=identity),
                       scale=Vector3(z=MARKER_TEXT_HEIGHT_M), color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0),
                       text=f"{region.query.name}{affordance} {region.score:.2f}")
        markers += [axes, label]
    return MarkerArray(markers=markers)


def camera_info_message(intrinsics: CameraIntrinsics, header: Header) -> CameraInfo:
    """The camera_info of a rectified pinhole camera (no distortion) with these intrinsics."""
    k = intrinsics.as_matrix()
    p = np.hstack([k, np.zeros((3, 1))])
    return CameraInfo(header=header, width=intrinsics.width, height=intrinsics.height, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=k.reshape(-1).tolist(), r=np.eye(3).reshape(-1).tolist(),
                      p=p.reshape(-1).tolist())
