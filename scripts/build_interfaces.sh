#!/usr/bin/env bash
# Build the ROS 2 interfaces (msg/, srv/) with rosidl + plain cmake against the ROS 2 PyPI wheels and install them
# into the virtual environment's prefix, where rclpy finds them without any environment variables.
# Only the generated interfaces and partclipseg_ros/__init__.py are installed: the Python code itself is imported
# from this checkout (editable install), so editing it needs no rebuild. Skips everything when nothing changed.
# On a ROS 2 install, build the package with colcon instead (docs/ros.md).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(cd "${VENV:-.venv}" && pwd)
BUILD=build/interfaces
stamp="$VENV/.partclipseg-interfaces"
inputs=$( (cat CMakeLists.txt package.xml partclipseg_ros/__init__.py msg/*.msg srv/*.srv; echo "$VENV") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
  exit 0
fi
echo "build_interfaces: generating msg/ and srv/ into $VENV (about 20 s)"
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
rm -rf "$BUILD" "$site/partclipseg_ros"
mkdir -p build && touch build/COLCON_IGNORE
export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
cmake -S . -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python" \
  -DPARTCLIPSEG_INTERFACES_ONLY=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release > "$BUILD.log" 2>&1 \
  || { tail -30 "$BUILD.log"; echo "build_interfaces: cmake configure failed (log: $BUILD.log)"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" >> "$BUILD.log" 2>&1 \
  || { tail -30 "$BUILD.log"; echo "build_interfaces: build failed (log: $BUILD.log)"; exit 1; }
cmake --install "$BUILD" >> "$BUILD.log" 2>&1 \
  || { tail -30 "$BUILD.log"; echo "build_interfaces: install failed (log: $BUILD.log)"; exit 1; }
"$VENV/bin/python" -c "from partclipseg_ros.msg import PartSegmentation; from partclipseg_ros.srv import SetQueries"
echo "$inputs" > "$stamp"
