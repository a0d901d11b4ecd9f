#!/usr/bin/env bash
# The GPU check, one command (about 5 minutes on one H100-class GPU, most of it the first TensorRT build):
#   parity of every backend variant available here against torch fp32 on the CPU (full-size random weights), and
#   a benchmark table: ms per stage and end to end on a 640x480 frame at Q = 1, 8, 16 queries.
# Needs torch (CUDA build) and open_clip_torch; onnxruntime-gpu, onnx/onnxscript and tensorrt are optional: a
# variant whose package is missing is skipped with a line saying what to install.
#
# Environment:
#   DEVICE=cuda       cuda[:N]; DEVICE=cpu runs the same code on the CPU (checks the script without a GPU)
#   VARIANTS="..."    backend/precision[+graphs][+compile] list (default: all for the device, TensorRT fp16 only)
#   TRT_FP32=1        also build and check fp32 TensorRT engines (adds a few minutes)
#   REPEATS=20        timed frames per query count
#   PARTCLIPSEG_CACHE exported graphs and engines (default: a fresh temporary folder, so builds are measured)
#   PYTHON            interpreter (default .venv/bin/python if present, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
DEVICE=${DEVICE:-cuda}
REPEATS=${REPEATS:-20}
CACHE=${PARTCLIPSEG_CACHE:-$(mktemp -d -t partclipseg-gpu-check-XXXXXX)}

"$PYTHON" - "$DEVICE" <<'EOF'
import importlib, importlib.util, platform, sys
device = sys.argv[1]
missing = [m for m in ("torch", "open_clip", "numpy", "cv2", "PIL", "skimage") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing required packages {missing}: pip install -r requirements.txt")
import torch
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda})")
if device.startswith("cuda"):
    if not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA GPU (a CPU build of torch, or no driver); DEVICE=cpu runs the CPU part")
    index = torch.device(device).index or 0
    print(f"GPU {torch.cuda.get_device_name(index)}, compute capability {'.'.join(map(str, torch.cuda.get_device_capability(index)))}")
for name in ("onnxruntime", "onnx", "onnxscript", "tensorrt"):
    try:
        module = importlib.import_module(name)
        extra = f", providers {module.get_available_providers()}" if name == "onnxruntime" else ""
        print(f"{name} {module.__version__}{extra}")
    except ImportError:
        print(f"{name}: not installed (its variants will be skipped)")
EOF

if [ -z "${VARIANTS:-}" ]; then
  if [ "${DEVICE%%:*}" = cuda ]; then
    VARIANTS="torch/fp32 torch/fp16 torch/bf16 torch/fp16+graphs onnxruntime/fp32 onnxruntime/fp16 tensorrt/fp16"
    [ "${TRT_FP32:-0}" = 1 ] && VARIANTS="$VARIANTS tensorrt/fp32"
  else
    VARIANTS="torch/fp32 torch/bf16 onnxruntime/fp32 onnxruntime/fp16 onnxruntime/int8"
  fi
fi
echo "cache: $CACHE"
# shellcheck disable=SC2086
exec "$PYTHON" -m partclipseg.cli bench-backends --device "$DEVICE" --variants $VARIANTS --repeats "$REPEATS" \
  --queries 1 8 16 --size full --cache-dir "$CACHE"
