"""The depth image and camera_info of a frame: paired by stamp (stamp_sync.py), then checked against the image.

Each image gets its :class:`FramePairings` when it arrives; the worker resolves them after the model ran (so the
model's time hides depth that arrives a little after the colour image) and gets :class:`DepthInputs` or a
:class:`NoDepth` whose message says what was wrong and what to do. The frame is then published in 2D only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from partclipseg.errors import CameraError
from partclipseg.geometry.camera import CameraIntrinsics
from partclipseg.geometry.plausibility import camera_info_intrinsics
from partclipseg.preprocess import ImageError

from .compressed import decode_depth
from .image_conversion import image_to_numpy
from .stamp_sync import Match, Pairing, StampSync

DEPTH_ENCODINGS = ("16UC1", "32FC1")
TWO_D_ONLY = "; publishing 2D only"


class NoDepth(Exception):
    """No usable depth or camera_info for a frame. ``key`` names the kind of problem (for log throttling)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class FramePairings:
    depth: Pairing[Image | CompressedImage]
    camera_info: Pairing[CameraInfo]


@dataclass(frozen=True)
class DepthInputs:
    depth: np.ndarray  # (H, W) uint16 or float32, a read-only view of the message
    intrinsics: CameraIntrinsics
    depth_scale: float | None  # None: by the depth's type


def stamp_ns(header: Header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


class DepthPairing:
    """The depth and camera_info streams of one activation (``capacity`` messages of each kept for pairing)."""

    def __init__(self, capacity: int, depth_topic: str, camera_info_topic: str) -> None:
        self.depth: StampSync[Image | CompressedImage] = StampSync(capacity)
        self.camera_info: StampSync[CameraInfo] = StampSync(capacity)
        self.depth_topic, self.camera_info_topic = depth_topic, camera_info_topic

    def add_depth(self, msg: Image | CompressedImage) -> None:
        self.depth.add(stamp_ns(msg.header), msg)

    def add_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info.add(stamp_ns(msg.header), msg)

    def pair(self, header: Header) -> FramePairings:
        stamp = stamp_ns(header)
        return FramePairings(self.depth.pair(stamp), self.camera_info.pair(stamp))

    def clear(self) -> None:
        self.depth.clear()
        self.camera_info.clear()

    def inputs(self, header: Header, pairings: FramePairings, slop_s: float, deadline: float,
               depth_scale: float) -> DepthInputs:
        """The frame's depth and intrinsics (waiting until ``deadline``, monotonic s, for late ones), or NoDepth.

        ``depth_scale`` 0 = by encoding. Sizes are checked by the core (GeometryInputError) when it uses them.
        """
        slop_ns = round(slop_s * 1e9)
        depth_match = pairings.depth.resolve(slop_ns, deadline)
        info_match = pairings.camera_info.resolve(slop_ns, deadline)
        depth = self._paired("depth", "depth image", self.depth_topic, depth_match, slop_s,
                             "a depth image registered to the colour image (16UC1 mm or 32FC1 m, e.g. remap "
                             "depth:=/camera/aligned_depth_to_color/image_raw)")
        info = self._paired("camera_info", "camera_info", self.camera_info_topic, info_match, slop_s,
                            "the camera_info of the colour image, stamped like it")
        for key, what, topic, msg, fix in (
                ("depth", "depth image", self.depth_topic, depth,
                 "publish depth registered to the colour image (e.g. aligned_depth_to_color), whose frame is the "
                 "colour camera's optical frame"),
                ("camera_info", "camera_info", self.camera_info_topic, info,
                 "subscribe the camera_info of the colour image (the depth is aligned to it)")):
            if msg.header.frame_id != header.frame_id:
                raise NoDepth(f"{key} frame", f"the {what} on {topic} is in frame {msg.header.frame_id!r} but the "
                              f"image in {header.frame_id!r}: {fix}{TWO_D_ONLY}")
        try:
            array = decode_depth(depth) if isinstance(depth, CompressedImage) else image_to_numpy(depth,
                                                                                                 DEPTH_ENCODINGS)[0]
        except ImageError as exc:
            raise NoDepth("depth encoding", f"depth image on {self.depth_topic} rejected: {exc}{TWO_D_ONLY}") from None
        try:
            roi = (info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height)
            intrinsics = camera_info_intrinsics(info.k, info.width, info.height, info.d, info.distortion_model,
                                                info.binning_x, info.binning_y, roi)
        except CameraError as exc:
            raise NoDepth("camera_info unusable",
                          f"camera_info on {self.camera_info_topic} cannot be used: {exc}{TWO_D_ONLY}") from None
        return DepthInputs(array, intrinsics, depth_scale or None)

    @staticmethod
    def _paired(key: str, what: str, topic: str, match: Match, slop_s: float, publish: str):
        """The matched message, or NoDepth saying whether none came at all or the closest was too far off."""
        if match.found:
            return match.item
        if match.offset_ns is None:  # nothing kept since activation (the kept messages are never all dropped)
            raise NoDepth(f"{key} missing", f"no {what} received on {topic} yet: publish {publish}{TWO_D_ONLY}")
        side = "older" if match.offset_ns < 0 else "newer"
        raise NoDepth(f"{key} stale", f"the {what} on {topic} closest in stamp to the image is "
                      f"{abs(match.offset_ns) / 1e9:.3f} s {side}, beyond sync_slop {slop_s:.3f} s: the stream lags, "
                      "stopped, or is stamped by another clock (raise sync_slop only if the two really are that far "
                      f"apart){TWO_D_ONLY}")
