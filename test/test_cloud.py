"""PointCloud2 packing and the pure-numpy reader."""
import struct

import numpy as np
import pytest

from partclipseg.geometry.cloud import FLOAT32, UINT32, CloudError, CloudField, pack_labelled, pack_xyz, read_fields, read_xyz


def test_pack_is_the_standard_xyz_layout_and_reads_back_exactly():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(1000, 3)).astype(np.float32)
    cloud = pack_xyz(points)
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1)]
    assert (cloud.point_step, cloud.row_step, cloud.width, cloud.height) == (12, 12000, 1000, 1)
    assert not cloud.is_bigendian and cloud.is_dense and len(cloud.data) == 12000
    # little-endian float32 x, y, z per point, byte for byte
    assert cloud.data[12:24] == struct.pack("<3f", *points[1])
    back = read_xyz(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, points)
    # float64 input is rounded to float32 once
    np.testing.assert_array_equal(read_xyz(pack_xyz(points.astype(np.float64)).data, cloud.fields, 12, 1000),
                                  points)


def test_empty_cloud():
    cloud = pack_xyz(np.zeros((0, 3)))
    assert (cloud.width, cloud.row_step, cloud.data) == (0, 0, b"")
    assert read_xyz(cloud.data, cloud.fields, 12, 0).shape == (0, 3)


def test_reader_honours_offsets_padding_rows_and_endianness():
    # an organised 2x3 cloud as PCL writes it: x y z _ rgb, point_step 20, rows padded to 64 bytes
    points = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    rows = []
    for row in points:
        data = b"".join(struct.pack(">3f4xf", *p, 0.5) for p in row)
        rows.append(data + b"\0" * (64 - len(data)))
    fields = [CloudField("x", 0), CloudField("y", 4), CloudField("z", 8), CloudField("rgb", 16)]
    back = read_xyz(b"".join(rows), fields, point_step=20, width=3, height=2, is_bigendian=True, row_step=64)
    np.testing.assert_array_equal(back, points.reshape(-1, 3))


@pytest.mark.parametrize(
    "fields, data, reason",
    [
        ([CloudField("x", 0), CloudField("y", 4)], bytes(12), "no field z"),
        ([CloudField("x", 0), CloudField("y", 4), CloudField("z", 8, datatype=8)], bytes(12), "FLOAT32"),
        ([CloudField("x", 0), CloudField("y", 4), CloudField("z", 10)], bytes(12), "offset"),
        ([CloudField("x", 0), CloudField("y", 4), CloudField("z", 8)], bytes(13), "13 bytes"),
    ],
)
def test_reader_rejects_what_it_cannot_read(fields, data, reason):
    with pytest.raises(CloudError, match=reason):
        read_xyz(data, fields, point_step=12, width=1)


def test_pack_rejects_bad_points():
    with pytest.raises(CloudError, match=r"\(N, 3\)"):
        pack_xyz(np.zeros((4, 2)))
    with pytest.raises(CloudError, match="finite"):
        pack_xyz(np.array([[0.0, np.nan, 1.0]]))


def test_labelled_cloud_round_trip_and_layout():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(7, 3)).astype(np.float32)
    labels = np.array([1, 1, 2, 2, 2, 5, 5], dtype=np.uint32)
    scores = np.linspace(0.1, 0.9, 7, dtype=np.float32)
    packed = pack_labelled(points, labels, scores)
    assert (packed.point_step, packed.row_step, packed.width, packed.height) == (20, 140, 7, 1)
    assert [(f.name, f.offset, f.datatype) for f in packed.fields] == [
        ("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("label", 12, UINT32), ("score", 16, FLOAT32)]
    columns = read_fields(packed.data, packed.fields, ["x", "y", "z", "label", "score"], 20, 7)
    np.testing.assert_array_equal(np.stack([columns[n] for n in "xyz"], axis=1), points)
    np.testing.assert_array_equal(columns["label"], labels)
    np.testing.assert_array_equal(columns["score"], scores)
    np.testing.assert_array_equal(read_xyz(packed.data, packed.fields, 20, 7), points)  # xyz readers keep working
    empty = pack_labelled(np.zeros((0, 3)), [], [])
    assert empty.width == 0 and empty.data == b""
    with pytest.raises(CloudError, match="as many labels"):
        pack_labelled(points, labels[:3], scores)
    with pytest.raises(CloudError, match="finite"):
        pack_labelled(np.full((1, 3), np.nan), [1], [0.5])
