#!/usr/bin/env bash
# Set up (or bring up to date) everything this repository needs, on a fresh machine: a virtual environment
# with the pinned Python dependencies, the package itself (editable), and the ROS 2 interfaces built into it.
# Idempotent: a second run only checks. Environment: PYTHON (default python3), VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
stamp="$VENV/.partclipseg-setup"
inputs=$(cat requirements*.txt setup.py scripts/setup.sh | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
touch "$VENV/COLCON_IGNORE"  # the ROS wheels' share/*/package.xml are not packages of a colcon workspace here
if [ "$(cat "$stamp" 2>/dev/null)" != "$inputs" ]; then
  echo "setup: installing pinned requirements (first time: about 2 minutes, ~6 GB)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt -r requirements-ros.txt
  # compat mode puts this checkout on sys.path (a .pth line), so partclipseg_ros/__init__.py installed with the
  # generated interfaces (scripts/build_interfaces.sh) finds the node modules here, from any directory.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e . --config-settings editable_mode=compat
  echo "$inputs" > "$stamp"
fi
if [ -x scripts/build_interfaces.sh ]; then
  scripts/build_interfaces.sh
fi
echo "setup: ready ($VENV)"
