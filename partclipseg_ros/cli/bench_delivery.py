"""``partclipseg-ros bench --delivery``: how many camera frames reach the node, by how the camera publishes.

The node runs in its own process (``partclipseg-ros segment``, tiny random weights, the package's Fast DDS
profile, input reliability following the camera); the camera is ``partclipseg-ros camera`` in another process,
with default middleware settings (no profile: as a stock driver starts) or with the package's profile, best effort
or reliable, raw or compressed, at 15 Hz. Received = the node's ``frames_received`` in /diagnostics (every frame
that arrived; the latest-frame drop while the model is busy is not a loss), before and after each case.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

from partclipseg.benchmark.common import frame, median_ms

from ..compressed import decode_image, encode_image
from ..environment import share_path
from .client import Client

NODE = "partclipseg_delivery"
TOPIC = "/bench_delivery/image"
RATE_HZ = 15.0


class DiagnosticsReader(Client):
    """The node's /diagnostics values, read in this process."""

    def __init__(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        super().__init__("partclipseg_delivery_bench")
        self.latest: dict[str, str] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_status,
                                      QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))

    def _on_status(self, msg) -> None:
        for status in msg.status:
            if status.name == f"/{NODE}/{NODE}: part segmentation":
                self.latest = {kv.key: kv.value for kv in status.values}


def _run(args: list[str], log: Path, env: dict[str, str | None]) -> subprocess.Popen:
    environment = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.Popen([sys.executable, "-m", "partclipseg_ros.cli", *args], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env=environment)


def _case(reader: DiagnosticsReader, node: subprocess.Popen, transport: str, size: str, reliable: bool,
          profile: bool, frames: int, folder: Path) -> dict:
    before = int(reader.latest["frames_received"]), int(reader.latest["frames_lost_in_transport"])
    log = folder / f"camera-{transport}-{size}-{reliable}-{profile}.log"
    camera = _run(["camera", "--topic", TOPIC, "--size", size, "--rate", str(RATE_HZ), "--frames", str(frames),
                   "--transport", transport, *(["--reliable"] if reliable else [])], log,
                  {"FASTDDS_DEFAULT_PROFILES_FILE": str(share_path("config", "fastdds_shm.xml")) if profile else None})
    camera.wait(frames / RATE_HZ + 60)
    reader.spin(3 * 0.25 + 1.0)  # the last frames, and a diagnostics period after them
    sent = json.loads(log.read_text().strip().splitlines()[-1])["sent"]
    received = int(reader.latest["frames_received"]) - before[0]
    lost = int(reader.latest["frames_lost_in_transport"]) - before[1]
    return {"camera": "package profile" if profile else "default settings",
            "qos": "reliable" if reliable else "best effort", "transport": transport, "size": size, "sent": sent,
            "received": received, "lost_events": lost}


def delivery_rows(seconds: float, sizes: list[str]) -> list[dict]:
    """One row per case (see the module docstring)."""
    frames = round(seconds * RATE_HZ)
    folder = Path(tempfile.mkdtemp(prefix="partclipseg-delivery-"))
    reader = DiagnosticsReader()
    rows = []
    try:
        for transport in ("raw", "compressed"):
            node = _run(["segment", "--random-weights", "tiny", "--queries", "cup/handle", "--name", NODE,
                         "--namespace", NODE, f"image:={TOPIC}", f"image_transport:={transport}",
                         "-p", "diagnostics_period:=0.25"], folder / f"node-{transport}.log", {})
            try:
                reader.latest = {}
                reader.spin_until(lambda: reader.latest.get("state") == "active", 120, "active node", node)
                for profile in (False, True):
                    for reliable in (False, True):
                        for size in sizes:
                            row = _case(reader, node, transport, size, reliable, profile, frames, folder)
                            rows.append(row)
                            print(f"  {row}", file=sys.stderr, flush=True)
            finally:
                node.send_signal(2)
                node.wait(30)
    finally:
        reader.close()
    return rows


def decode_ms(size: str) -> tuple[int, int, float]:
    """(raw rgb8 bytes, JPEG bytes, median decode ms) of the benchmark frame at ``size``."""
    width, _, height = size.partition("x")
    image = cv2.resize(frame(), (int(width), int(height)), interpolation=cv2.INTER_AREA)
    msg = encode_image(image, "rgb8")
    return image.nbytes, len(msg.data), median_ms(lambda: decode_image(msg), 30)


def print_delivery_table(seconds: float, sizes: list[str]) -> None:
    rows = delivery_rows(seconds, sizes)
    print(f"\npartclipseg-ros bench --delivery: camera in its own process at {RATE_HZ:g} Hz, {seconds:g} s per case; "
          "node in its own process (package profile, input_qos best_available); received = the node's "
          "frames_received")
    print("| camera middleware | camera QoS | transport | size | received / sent | % | lost (middleware events) |")
    print("|---|---|---|---|---:|---:|---:|")
    for r in rows:
        share = 100.0 * r["received"] / r["sent"] if r["sent"] else 0.0
        print(f"| {r['camera']} | {r['qos']} | {r['transport']} | {r['size']} | {r['received']} / {r['sent']} | "
              f"{share:.1f} | {r['lost_events']} |")
    print("\ncompressed transport, JPEG quality 90, decode in the node (OpenCV, median of 30):")
    for size in sizes:
        raw, jpeg, ms = decode_ms(size)
        print(f"  {size}: {jpeg / 1e3:.0f} kB per frame (raw rgb8 {raw / 1e3:.0f} kB), decode {ms:.1f} ms")
