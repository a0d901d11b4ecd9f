"""The one place for defaults and limits shared by the library, the CLI and the ROS node."""
from __future__ import annotations

import os
from pathlib import Path

# --- model input (docs/model.md, "Input": CIDAS preprocessor, 352x352 bilinear, ImageNet mean/std) ---
INPUT_SIZE = 352
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

# --- architecture constants that cannot be inferred from checkpoint tensors ---
EXTRACT_LAYERS = (3, 6, 9)  # taps after these (0-based) vision blocks
DECODER_HEADS = 4  # CIDAS config: decoder_num_attention_heads
ADAPTER_MIX = 0.2  # a = 0.2 * Adapter(a) + 0.8 * a
HEAD_WIDTH = 64  # CLIP convention: heads = width // 64
OPEN_CLIP_ARCH = "ViT-B-16-quickgelu"  # tokenizer name (same BPE as HF CLIPTokenizer)

# --- queries ---
MAX_QUERIES = 16  # also the engines' Qmax
MAX_QUERY_CHARS = 64  # one query, after normalisation
MAX_QUERY_STRING_CHARS = 2048  # one string holding several queries
TEXT_CACHE = 1024  # text features of at most this many prompts are kept (a query set's prompts always)
TOKEN_CACHE = 10_000  # words whose BPE the tokenizer keeps (open_clip's cache is unbounded otherwise)

# --- backends and deployment (docs/deployment.md) ---
PRECISIONS = ("fp32", "fp16", "bf16", "int8")  # every backend precision; each backend lists the ones it runs
AUTO = "auto"  # backend/device/precision chosen on start-up (the CLI's and the node's default; partclipseg.auto)
GATE_MIN_AGREEMENT = 0.99  # reduced precision runs a checkpoint only if its labels agree with fp32 this well
ONNX_OPSET = 18  # dynamo exporter; opset >= 23 emits Attention, which TensorRT 10 cannot parse
QUERY_BUCKETS = (1, 2, 4, 8, 16)  # torch CUDA graphs / torch.compile: query counts padded up to one of these
TRT_WORKSPACE_MIB = 4096  # TensorRT builder workspace pool limit
CACHE_ENV = "PARTCLIPSEG_CACHE"  # overrides the cache folder for exported ONNX graphs and TensorRT engines


def default_cache_dir() -> Path:
    """Where exported graphs and engines are kept: $PARTCLIPSEG_CACHE, else $XDG_CACHE_HOME/partclipseg, else
    ~/.cache/partclipseg."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "partclipseg"


# --- images ---
MAX_IMAGE_PIXELS = 4096 * 4096

# --- post-processing ---
SCORE_THRESHOLD = 0.0  # official behaviour: no threshold, argmax only
SCORE_THRESHOLD_RANGE = (0.0, 1.0)  # a probability (CLI and node parameter ranges)
MIN_PIXELS = 0
MIN_PIXELS_RANGE = (0, MAX_IMAGE_PIXELS)
CLIPSEG_BACKGROUND_LOGIT = 0.0  # plain CLIPSeg has no background prompt: sigmoid 0.5 competes instead
MODES = ("pred-all", "oracle")

# --- training (docs/model.md, "Training losses": the released configs) ---
TRAIN_LR = 1e-4  # AdamW, torch default betas
TRAIN_WEIGHT_DECAY = 1e-4  # 0 for norm layers and embeddings
TRAIN_POLY_POWER = 0.9  # WarmupPolyLR without warm-up
TRAIN_CLIP_NORM = 0.01  # full-model gradient-norm clipping
TRAIN_BATCH = 8
TRAIN_ITERATIONS = 20000
TRAIN_SEED = 12345678
TRAIN_CHECKPOINT_PERIOD = 1000
LOSS_OBJECT_WEIGHT = 1.0  # OBJ_LAMBDA
LOSS_PART_WEIGHT = 1.0  # PART_LAMBDA
LOSS_SEPARATION_WEIGHT = 0.1  # ATTN_SEP_LAMBDA
LOSS_ENHANCEMENT_WEIGHT = 0.01  # ATTN_ENH_LAMBDA
LOSS_BACKGROUND_WEIGHT = 0.05  # BCE weight of the background channels
ATTENTION_THRESHOLD = 0.3  # ATTN_MASK_THRESHOLD
ATTENTION_KERNEL = 3  # Gaussian smoothing of the attention maps (Attend-and-Excite kernel)
ATTENTION_SIGMA = 0.5
SEPARATION_MODES = ("released", "soft")  # L_sep as released (no gradient) or the differentiable surrogate
SEPARATION_TEMPERATURE = 0.05  # soft surrogate: sigmoid((x - threshold) / temperature) replaces x > threshold

# --- geometry: depth + camera_info -> part points and grasp pose (docs/geometry.md) ---
DEPTH_SCALE_16UC1 = 0.001  # metres per unit of a 16UC1 depth image (millimetres)
DEPTH_SCALE_32FC1 = 1.0  # metres per unit of a 32FC1 depth image
OUTLIER_MADS = 5.0  # depth outliers: |z - median| > 5 * 1.4826 * MAD (keeps all of a round part: docs)
OUTLIER_MIN_BAND = 0.005  # metres; points this close to the median depth are never outliers
OUTLIER_SAMPLES = 4096  # the median and MAD are taken over at most this many evenly strided points
MIN_GEOMETRY_POINTS = 10  # fewer valid points under a mask: no pose
CONFIDENCE_HALF_POINTS = 100  # the point-count factor of the confidence is 0.5 at this many points
AXIS_HINT = (0.0, -1.0, 0.0)  # the grasp z axis is signed to point along this (camera frame: up in the image)

# --- plausibility: what may become a 3D region (docs/geometry.md, "Plausibility") ---
# Depth outside [DEPTH_MIN, DEPTH_MAX] metres is not used: RGB-D cameras measure from about 0.1-0.3 m (RealSense
# D4xx from ~0.1 m at low resolution, Azure Kinect / Orbbec Femto from 0.25 m) to at most about 10 m (RealSense's
# rated maximum; ToF cameras stop near 5.5 m), so anything outside is a sensor or encoding error, not a surface.
DEPTH_MIN = 0.1
DEPTH_MAX = 10.0
DEPTH_LIMITS = (0.001, 1000.0)  # what depth_min / depth_max may be set to (metres)
SATURATED_16UC1 = 65535  # 16UC1 cameras mark invalid or saturated pixels with the largest value
# The largest side of a region a robot may act on: a handle, lid or wheel is well below an arm's reach (~0.85 m for
# UR5e / Panda); a region larger than this is a mask that spilled over the scene.
MAX_PART_EXTENT = 1.0
MAX_PART_EXTENT_LIMITS = (0.01, 100.0)
FIELD_OF_VIEW_DEG = (1.0, 170.0)  # a pinhole camera_info whose horizontal or vertical FOV lies outside is refused
# Distortion coefficients per camera_info distortion_model (an empty D means none); images must be rectified.
DISTORTION_LENGTHS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
# Byte order: depth whose values are plausible far more often with their bytes swapped is refused (the sample is
# at most BYTE_ORDER_SAMPLES evenly strided pixels).
BYTE_ORDER_SAMPLES = 16384

# --- evaluation: part reports (what the node would publish; docs/training.md, Evaluation) ---
REPORT_MIN_PIXELS = MIN_GEOMETRY_POINTS  # a Pred-All mask this large counts as reported: enough points for a pose
REPORT_MIN_OVERLAP = 0.5  # a report is right when at least this share of its pixels lies on the part

# --- where the official weights are (README, "Weights"); never downloaded implicitly ---
OFFICIAL_WEIGHTS = {
    "pascal-part-116": "https://drive.google.com/file/d/1ytZpfutk__67GLwB-4jMClehJlnAzYFS",
    "ade20k-part-234": "https://drive.google.com/file/d/10UTxrlamYq2rq3Uuv1GdOxpLy8f-QXoz",
    "clipseg-rd64-refined": "https://huggingface.co/CIDAS/clipseg-rd64-refined",
}


# A small model trained in this repository on synthetic kitchen parts (see docs/training.md): the embedded default
# of the demo and the end-to-end tests. Not a substitute for the official weights.
BUNDLED_CHECKPOINT = Path(__file__).parent / "weights" / "kitchen-tiny.pth"
BUNDLED_OBJECTS = ("pot", "pan", "mug", "knife", "spatula", "bottle")  # the synthetic objects it was trained on


def weights_hint() -> str:
    """Where to get weights, for error messages."""
    lines = [f"  {name}: {url}" for name, url in OFFICIAL_WEIGHTS.items()]
    return ("Download one of these on a machine with internet access and pass its path:\n" + "\n".join(lines)
            + f"\nOr try the tiny model trained here on synthetic kitchen parts (it knows {', '.join(BUNDLED_OBJECTS)}):"
            f"\n  {BUNDLED_CHECKPOINT}")
