"""The segment node's parameters: one table with defaults (from partclipseg.defaults), ranges, choices and when a
change takes effect."""
from __future__ import annotations

import array
import re
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from partclipseg.backends import BACKEND_CHOICES, BACKENDS, BackendOptions
from partclipseg.backends.options import option_fields
from partclipseg.defaults import AUTO, AXIS_HINT, MAX_IMAGE_PIXELS, MIN_GEOMETRY_POINTS, MIN_PIXELS, MODES, OUTLIER_MADS
from partclipseg.defaults import OUTLIER_MIN_BAND, SCORE_THRESHOLD
from partclipseg.defaults import DEPTH_LIMITS, DEPTH_MAX, DEPTH_MIN, MAX_PART_EXTENT, MAX_PART_EXTENT_LIMITS
from partclipseg.defaults import MIN_PIXELS_RANGE, SCORE_THRESHOLD_RANGE
from partclipseg.queries import parse_objects
from partclipseg.factory import RANDOM_SIZES, Weights
from partclipseg.geometry.parts import GeometrySettings

from .defaults import (
    DIAGNOSTICS_PERIOD_S, IMAGE_TRANSPORT, INPUT_DEPTH, INPUT_QOS, INPUT_QOS_CHOICES, SYNC_INPUT_QOS, SYNC_QUEUE,
    SYNC_SLOP_S,
    SYNC_WAIT_S, TF_TIMEOUT_S,
)

# When a change takes effect: "now" (any state), "activate" (refused while active), "configure" (refused while
# configured), "start" (read once when the node starts).
NOW, ACTIVATE, CONFIGURE, START = "now", "activate", "configure", "start"


def _backend_help(option) -> str:
    """A backend option's description, naming the backends that read it."""
    readers = option.metadata["backends"]
    return ("" if readers == BACKENDS else f"{' and '.join(readers)} backend: ") + option.metadata["help"]


@dataclass(frozen=True)
class Spec:
    name: str
    default: Any
    description: str
    applies: str
    choices: tuple[str, ...] | None = None
    limits: tuple[float, float] | None = None


SPECS = (
    Spec("checkpoint", "", "official PartCLIPSeg .pth or HF CLIPSeg weights (path; never downloaded)", CONFIGURE),
    Spec("random_weights", "", "'tiny' or 'full': random weights instead of a checkpoint (tests and benchmarks; "
         "the masks are meaningless)", CONFIGURE, ("",) + RANDOM_SIZES),
    Spec("trust_checkpoint", False, "allow full unpickling of checkpoints holding more than tensors (trusted files "
         "only)", CONFIGURE),
    Spec("backend", AUTO, "inference backend; auto: TensorRT or torch on a GPU, else ONNX Runtime on the CPU, else "
         "torch (the choice and why: /diagnostics)", CONFIGURE, BACKEND_CHOICES),
    *(Spec(f.name, f.metadata["user_default"], _backend_help(f), CONFIGURE, f.metadata["choices"],
           f.metadata["limits"]) for f in option_fields()),
    Spec("queries", "", "active queries, e.g. 'pot/handle; knife handle' ('' = none); also set by query and "
         "set_queries", NOW),
    Spec("mode", MODES[0], "pred-all (objects predicted) or oracle (objects given in 'objects')", NOW, MODES),
    Spec("objects", "", "objects present in the scene for mode oracle, e.g. 'pot; knife'", NOW),
    Spec("score_threshold", SCORE_THRESHOLD, "pixels below this probability are labelled 0", NOW,
         limits=SCORE_THRESHOLD_RANGE),
    Spec("min_pixels", MIN_PIXELS, "parts with fewer pixels are dropped", NOW, limits=MIN_PIXELS_RANGE),
    Spec("overlay", True, "publish overlay (rgb8 with legend) while someone subscribes", NOW),
    Spec("cameras", "", "names of several cameras served by this node, e.g. 'head; wrist': each has its inputs and "
         "outputs under its name (head/image, head/segmentation, ...); '' = one camera, plain topic names", CONFIGURE),
    Spec("image_transport", IMAGE_TRANSPORT, "raw: sensor_msgs/Image on 'image' (and 'depth'); compressed: "
         "image_transport's CompressedImage on image/compressed (and depth/compressedDepth)", ACTIVATE,
         ("raw", "compressed")),
    Spec("input_qos", INPUT_QOS, "image subscription reliability: best_available (follows the publishers: "
         "reliable when all are, else best effort), sensor_data (best effort), reliable, system_default", ACTIVATE,
         INPUT_QOS_CHOICES),
    Spec("input_depth", INPUT_DEPTH, "image subscription queue depth (keep last)", ACTIVATE, limits=(1, 100)),
    Spec("diagnostics_period", DIAGNOSTICS_PERIOD_S, "seconds between /diagnostics messages", START,
         limits=(0.05, 60.0)),
    # depth + camera_info -> affordances, markers
    Spec("depth_qos", SYNC_INPUT_QOS, "depth subscription QoS, as input_qos", ACTIVATE, INPUT_QOS_CHOICES),
    Spec("camera_info_qos", SYNC_INPUT_QOS, "camera_info subscription QoS, as input_qos", ACTIVATE,
         INPUT_QOS_CHOICES),
    Spec("sync_queue", SYNC_QUEUE, "depth and camera_info messages kept for pairing with frames (also their "
         "subscriptions' keep-last depth)", ACTIVATE, limits=(1, 100)),
    Spec("sync_slop", SYNC_SLOP_S, "seconds: depth and camera_info pair with a frame when their stamps differ by at "
         "most this", NOW, limits=(0.0, 1.0)),
    Spec("sync_wait", SYNC_WAIT_S, "seconds after a frame arrived that the node waits for its depth and camera_info "
         "(the model's time counts)", NOW, limits=(0.0, 5.0)),
    Spec("depth_scale", 0.0, "metres per depth unit; 0 = by encoding (16UC1: 0.001, 32FC1: 1)", NOW,
         limits=(0.0, 1.0)),
    Spec("affordances_file", "", "affordance vocabulary YAML ('' = the bundled one); 'grasp:knife' queries use it",
         CONFIGURE),
    Spec("target_frame", "", "frame of poses and clouds ('' = the image's optical frame); needs tf2_ros", CONFIGURE),
    Spec("tf_timeout", TF_TIMEOUT_S, "seconds to wait for the transform into target_frame at the image stamp", NOW,
         limits=(0.0, 5.0)),
    Spec("outlier_mads", OUTLIER_MADS, "depth outliers: points farther than this many robust standard deviations "
         "from the part's median depth", NOW, limits=(0.5, 100.0)),
    Spec("outlier_min_band", OUTLIER_MIN_BAND, "metres around the part's median depth never treated as outliers",
         NOW, limits=(0.0, 1.0)),
    Spec("min_depth_points", MIN_GEOMETRY_POINTS, "parts with fewer valid depth points get no 3D region", NOW,
         limits=(3, MAX_IMAGE_PIXELS)),
    Spec("axis_hint", tuple(AXIS_HINT), "camera-frame direction the pose's z axis is signed towards (3 numbers; "
         "default: up in the image)", NOW),
    # plausibility: what may become a 3D region (docs/geometry.md, "Plausibility")
    Spec("depth_min", DEPTH_MIN, "metres: nearer depth is not used (below what RGB-D cameras measure)", NOW,
         limits=DEPTH_LIMITS),
    Spec("depth_max", DEPTH_MAX, "metres: farther depth is not used (beyond what RGB-D cameras measure)", NOW,
         limits=DEPTH_LIMITS),
    Spec("max_part_extent", MAX_PART_EXTENT, "metres: a part region larger than this on any side is not published "
         "(a mask that spilled over the scene)", NOW, limits=MAX_PART_EXTENT_LIMITS),
    Spec("publish_unknown_3d", False, "publish 3D regions also for queries a closed-vocabulary model was never "
         "trained on (flagged unknown_query; their masks are guesses)", NOW),
)
SPEC = {s.name: s for s in SPECS}
CAMERA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class NodeParameters:
    checkpoint: str
    random_weights: str
    trust_checkpoint: bool
    backend: str
    device: str
    precision: str
    cache_dir: str
    torch_compile: bool
    cuda_graphs: bool
    engine_dir: str
    rebuild_engines: bool
    workspace_mib: int
    max_queries: int
    queries: str
    mode: str
    objects: str
    score_threshold: float
    min_pixels: int
    overlay: bool
    cameras: str
    image_transport: str
    input_qos: str
    input_depth: int
    diagnostics_period: float
    depth_qos: str
    camera_info_qos: str
    sync_queue: int
    sync_slop: float
    sync_wait: float
    depth_scale: float
    affordances_file: str
    target_frame: str
    tf_timeout: float
    outlier_mads: float
    outlier_min_band: float
    min_depth_points: int
    axis_hint: tuple[float, ...]
    depth_min: float
    depth_max: float
    max_part_extent: float
    publish_unknown_3d: bool

    def with_changes(self, changes: Iterable[Parameter]) -> "NodeParameters":
        return dataclasses.replace(self, **{p.name: _python(p.value) for p in changes if p.name in SPEC})

    def geometry_settings(self) -> GeometrySettings:
        """The core's geometry settings (raises ValueError for values it refuses, e.g. a zero axis_hint)."""
        return GeometrySettings(outlier_mads=self.outlier_mads, outlier_min_band=self.outlier_min_band,
                                min_points=self.min_depth_points, axis_hint=self.axis_hint,
                                depth_min=self.depth_min, depth_max=self.depth_max,
                                max_part_extent=self.max_part_extent)

    def weights(self) -> Weights:
        return Weights(self.checkpoint, self.random_weights, self.trust_checkpoint)

    def backend_options(self) -> BackendOptions:
        """The backend options these parameters set (a parameter per :class:`BackendOptions` field)."""
        return BackendOptions(**{f.name: getattr(self, f.name) for f in option_fields()})

    @property
    def object_list(self) -> list[str]:
        return parse_objects(self.objects)

    @property
    def camera_list(self) -> list[str]:
        """The camera names ([] = one unnamed camera); raises ValueError for names that cannot be topic names."""
        names = [name.strip() for name in self.cameras.replace(",", ";").split(";") if name.strip()]
        bad = [name for name in names if not CAMERA_NAME.match(name)]
        if bad:
            raise ValueError(f"cameras: {', '.join(map(repr, bad))} cannot be part of a topic name (letters, digits "
                             "and _, starting with a letter)")
        if len(set(names)) != len(names):
            raise ValueError(f"cameras: a name is listed twice in {self.cameras!r}")
        return names


def _descriptor(spec: Spec) -> ParameterDescriptor:
    text = spec.description
    if spec.choices:
        text += f" (one of: {', '.join(repr(c) for c in spec.choices)})"
    text += {NOW: "", ACTIVATE: "; read at activate", CONFIGURE: "; read at configure", START: "; read at start"}[
        spec.applies]
    descriptor = ParameterDescriptor(description=text, read_only=spec.applies == START)
    if spec.limits is not None:
        low, high = spec.limits
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
    return descriptor


def declare(node: Node) -> NodeParameters:
    """Declare every parameter (overrides from --params-file / -p apply) and return their values."""
    for spec in SPECS:
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        node.declare_parameter(spec.name, default, _descriptor(spec))
    return NodeParameters(**{s.name: _python(node.get_parameter(s.name).value) for s in SPECS})


def _python(value: Any) -> Any:
    """Array parameters (list or array.array) as tuples, so that NodeParameters stays immutable."""
    return tuple(value) if isinstance(value, (list, tuple, array.array)) else value


def refusal(parameter: Parameter, state: str) -> str | None:
    """Why ``parameter`` cannot be set now in lifecycle ``state`` (None if it can); ranges are checked by rcl."""
    spec = SPEC.get(parameter.name)
    if spec is None:
        return None
    if spec.choices is not None and parameter.value not in spec.choices:
        return f"{spec.name} must be one of {', '.join(repr(c) for c in spec.choices)}, got {parameter.value!r}"
    if spec.applies == CONFIGURE and state in ("inactive", "active"):
        return f"{spec.name} is read at configure: deactivate and clean up the node, set it, then configure again"
    if spec.applies == ACTIVATE and state == "active":
        return f"{spec.name} is read at activate: deactivate the node, set it, then activate again"
    return None
