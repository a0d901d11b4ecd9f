#!/usr/bin/env bash
# The test command: set up (idempotent), then run the whole suite on the CPU. Extra arguments go to pytest.
# DDS stays on this machine and on a domain of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}
export ROS_LOG_DIR=${ROS_LOG_DIR:-$(mktemp -d)}
exec "${VENV:-.venv}/bin/python" -m pytest -q "$@"
