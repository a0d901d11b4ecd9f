"""The ROS layer's defaults and limits (the core's are in partclipseg.defaults)."""
from __future__ import annotations

FOLLOW_PUBLISHERS = "best_available"  # input reliability follows the publishers (reliable if all are, else best effort)
INPUT_QOS = FOLLOW_PUBLISHERS  # image subscription: volatile, keep last INPUT_DEPTH
INPUT_QOS_CHOICES = (FOLLOW_PUBLISHERS, "sensor_data", "reliable", "system_default")
QOS_REFRESH_S = 0.5  # how often a following subscription looks at its publishers
IMAGE_TRANSPORT = "raw"  # or "compressed": image_transport's <image>/compressed and <depth>/compressedDepth
LOSS_WINDOW_S = 10.0  # lost-message diagnosis: over this many seconds ...
LOSS_SHARE = 0.05  # ... warn when at least this share of the messages was lost
LOSS_MIN_FRAMES = 3  # ... and at least this many
INPUT_DEPTH = 1  # latest frame only: a deeper input queue only adds stale frames
OUTPUT_DEPTH = 1  # outputs are reliable, keep last 1
DIAGNOSTICS_PERIOD_S = 1.0
NO_INPUT_WARNING_S = 5.0  # warn (with the likely cause) when an active node has had no image for this long
LOG_THROTTLE_S = 5.0  # the same bad-input message is logged at most once per this many seconds
MEMORY_TRIM_PERIOD_S = 10.0  # freed heap memory is returned to the system this often (memory.py)
# depth + camera_info -> affordances and markers
SYNC_INPUT_QOS = FOLLOW_PUBLISHERS  # depth and camera_info subscriptions
SYNC_SLOP_S = 0.02  # depth / camera_info pair with a frame when their stamps differ by at most this (< 1/30 s)
SYNC_WAIT_S = 0.1  # how long after a frame arrived the node waits for its depth / camera_info (model time counts)
SYNC_QUEUE = 5  # depth / camera_info messages kept for pairing (also their subscriptions' keep-last depth)
TF_TIMEOUT_S = 0.1  # TF lookup at the image stamp (target_frame)
MARKER_AXIS_MIN_M = 0.03  # axes triad length: half the part's largest extent, at least this
MARKER_LINE_WIDTH_M = 0.004
MARKER_TEXT_HEIGHT_M = 0.03
DEMO_RATE_HZ = 2.0
DEMO_FRAMES = 8
BENCH_QUERIES = "pot/handle; knife/blade; mug/handle; kettle/spout"  # the node benchmarks (bench, bench --cameras)
