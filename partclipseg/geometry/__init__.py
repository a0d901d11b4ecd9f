"""3D from a segmentation: camera intrinsics, part points and grasp poses, affordance regions, PointCloud2 layouts
(docs/geometry.md)."""
