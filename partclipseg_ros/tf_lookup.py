"""``target_frame``: the 3D outputs in another frame than the camera's, via TF looked up at the image's stamp.

The lookup is always at the stamp of the frame the regions come from, with a timeout (``tf_timeout``), never at
"latest": with a moving arm or camera, "latest" puts the part where it is not. ``tf2_ros`` is imported only here
and only when ``target_frame`` is set; where it is not installed (the PyPI ROS wheels have none), configure fails
with :class:`TransformUnavailable` saying so (docs/ros.md, "target_frame and TF", says why it does not fall back).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.time import Time
from std_msgs.msg import Header

from partclipseg.geometry.rotations import matrix_from_quaternion, quaternion_from_matrix
from partclipseg.geometry.regions import AffordanceRegion


class TransformUnavailable(RuntimeError):
    """No transform into target_frame: tf2_ros missing (at configure) or no TF at the stamp (per frame)."""


@dataclass(frozen=True)
class Rigid:
    """``p_target = rotation @ p_source + translation``."""

    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)

    @classmethod
    def from_msg(cls, transform) -> "Rigid":
        """From a geometry_msgs/Transform (TF's target <- source)."""
        t, q = transform.translation, transform.rotation
        return cls(matrix_from_quaternion((q.x, q.y, q.z, q.w)), np.array([t.x, t.y, t.z]))

    def region(self, region: AffordanceRegion) -> AffordanceRegion:
        """The same region in the target frame (the extent, along the pose's own axes, does not change)."""
        g = region.geometry
        rotation = self.rotation @ g.rotation
        points = (g.points.astype(np.float64) @ self.rotation.T + self.translation).astype(np.float32)
        geometry = dataclasses.replace(g, points=points, centroid=self.rotation @ g.centroid + self.translation,
                                       rotation=rotation, quaternion=quaternion_from_matrix(rotation))
        return dataclasses.replace(region, geometry=geometry)


class TfLookup:
    """A TF buffer and listener on ``node`` and lookups into ``target_frame`` at a message stamp."""

    def __init__(self, node: Node, target_frame: str) -> None:
        try:
            import tf2_ros
        except ImportError:
            raise TransformUnavailable(
                f"target_frame {target_frame!r} needs tf2_ros, which is not installed in this Python environment "
                "(the ROS 2 wheels on PyPI have none; a ROS 2 install has it: apt install ros-<distro>-tf2-ros). "
                "Leave target_frame empty to publish poses and clouds in the camera optical frame and transform them "
                "downstream."
            ) from None
        self.target_frame = target_frame
        self._errors = (tf2_ros.TransformException,)
        self._buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self._buffer, node)

    def lookup(self, header: Header, timeout_s: float) -> Rigid:
        """target_frame <- header.frame_id at header.stamp, waiting at most ``timeout_s`` for it."""
        try:
            stamped = self._buffer.lookup_transform(self.target_frame, header.frame_id, Time.from_msg(header.stamp),
                                                    timeout=Duration(seconds=timeout_s))
        except self._errors as exc:
            raise TransformUnavailable(
                f"no transform from {header.frame_id!r} to target_frame {self.target_frame!r} at the image stamp "
                f"{header.stamp.sec}.{header.stamp.nanosec:09d} within tf_timeout {timeout_s} s ({exc}): check that "
                "the TF tree connects them (robot_state_publisher, the camera's static transforms) and that TF "
                "keeps up with the camera (raise tf_timeout if it lags)"
            ) from None
        return Rigid.from_msg(stamped.transform)

    def close(self) -> None:
        self._listener.unregister()
