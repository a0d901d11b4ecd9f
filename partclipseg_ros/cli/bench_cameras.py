"""``partclipseg-ros bench --cameras N``: N cameras served by one node (one model, frames of the cameras encoded
together) against N single-camera nodes on the same machine, in the same run.

Each camera is ``partclipseg-ros camera`` in its own process (640x480 at 15 Hz, the package's Fast DDS profile, so
that no frame is lost on the way); each node is ``partclipseg-ros segment`` in its own process with random weights
of the given size (speed does not depend on their values) and 4 queries. This process counts every
PartSegmentation per camera: answered frames per second, each camera's share of the answers, and latency from the
frame's stamp to the answer.
"""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..defaults import BENCH_QUERIES
from ..environment import share_path
from .client import Client

RATE_HZ = 15.0
FRAME_SIZE = "640x480"


class AnswerCounter(Client):
    """Receives every PartSegmentation on the given topics: (stamp, receive time) per topic."""

    def __init__(self, topics: list[str]) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from ..msg import PartSegmentation

        super().__init__("partclipseg_bench_cameras")
        self.answers: dict[str, list[tuple[int, int]]] = {topic: [] for topic in topics}
        for topic in topics:
            self.node.create_subscription(
                PartSegmentation, topic,
                lambda msg, t=topic: self.answers[t].append(
                    (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec, time.time_ns())),
                QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "FASTDDS_DEFAULT_PROFILES_FILE": str(share_path("config", "fastdds_shm.xml"))}
    return subprocess.Popen([sys.executable, "-m", "partclipseg_ros.cli", *args], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env=env)


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _rss_mb(pid: int) -> float:
    """A process's resident memory (Linux /proc), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(counter: AnswerCounter, topics: list[str], warmup: float, seconds: float) -> list[dict]:
    """Per topic over a window of ``seconds`` after ``warmup``: answers per second and latency."""
    counter.spin(warmup)
    start = time.time_ns()
    counter.spin(seconds)
    end = time.time_ns()
    rows = []
    for topic in topics:
        window = [(stamp, got) for stamp, got in counter.answers[topic] if start <= got <= end]
        latency = [(got - stamp) / 1e6 for stamp, got in window]
        rows.append({"topic": topic, "answered": len(window), "hz": len(window) / ((end - start) / 1e9),
                     "latency_ms": statistics.median(latency) if latency else float("nan")})
    return rows


def camera_rows(cameras: int, size: str, seconds: float, warmup: float,
                backend: str) -> tuple[dict[str, list[dict]], dict[str, float]]:
    """({"one node": rows, "separate nodes": rows}, one row per camera; the setup's node memory (RSS, MB) at the end
    of the window); every node on ``backend``."""
    folder = Path(tempfile.mkdtemp(prefix="partclipseg-cameras-"))
    names = [f"cam{i}" for i in range(cameras)]
    source = {name: f"/bench_cameras/{name}/image" for name in names}
    results: dict[str, list[dict]] = {}
    memory: dict[str, float] = {}
    setups = {
        "one node": [["segment", f"backend:={backend}", f"cameras:={'; '.join(names)}", "--random-weights", size,
                      "--queries", BENCH_QUERIES, "--namespace", "bench_multi",
                      *(arg for n in names for arg in ("-r", f"{n}/image:={source[n]}"))]],
        "separate nodes": [["segment", f"backend:={backend}", f"image:={source[n]}", "--random-weights", size,
                            "--queries", BENCH_QUERIES, "--namespace", f"bench_single_{n}"] for n in names],
    }
    outputs = {"one node": [f"/bench_multi/{n}/segmentation" for n in names],
               "separate nodes": [f"/bench_single_{n}/segmentation" for n in names]}
    for setup, commands in setups.items():
        counter = AnswerCounter(outputs[setup])
        processes = []
        try:
            processes = [_start(command, folder / f"{setup.replace(' ', '_')}-{i}.log")
                         for i, command in enumerate(commands)]
            processes += [_start(["camera", "--topic", source[n], "--size", FRAME_SIZE, "--rate", str(RATE_HZ),
                                  "--reliable", "--wait", "300"], folder / f"camera-{setup}-{n}.log") for n in names]
            deadline = time.monotonic() + 600
            while not all(counter.answers[t] for t in outputs[setup]):  # every camera answered once: warm
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"bench --cameras: {setup} did not answer every camera (logs in {folder})")
                counter.spin(0.5)
            results[setup] = _measure(counter, outputs[setup], warmup, seconds)
            memory[setup] = sum(_rss_mb(p.pid) for p in processes[:len(commands)])
        finally:
            _stop(processes)
            counter.close()
        print(f"  {setup}: {json.dumps(results[setup])}, {memory[setup]:.0f} MB", file=sys.stderr, flush=True)
    return results, memory


def print_cameras_table(cameras: int, size: str, seconds: float, backend: str) -> None:
    results, memory = camera_rows(cameras, size, seconds, 5.0, backend)
    totals = {setup: sum(r["hz"] for r in rows) for setup, rows in results.items()}
    queries = len(BENCH_QUERIES.split(";"))
    print(f"\npartclipseg-ros bench --cameras {cameras}: {size} model (random weights), {queries} queries, backend "
          f"{backend} on the CPU; {cameras} cameras at {RATE_HZ:g} Hz, {FRAME_SIZE}, each in its own process; "
          f"{seconds:g} s measured after warm-up")
    print("| setup | camera | answered / s | share of answers | median latency ms | node memory (RSS) MB |")
    print("|---|---|---:|---:|---:|---:|")
    for setup, rows in results.items():
        for camera, row in zip((f"cam{i}" for i in range(cameras)), rows):
            share = row["hz"] / totals[setup] if totals[setup] else 0.0
            print(f"| {setup} | {camera} | {row['hz']:.2f} | {100 * share:.0f} % | {row['latency_ms']:.0f} | |")
        print(f"| {setup} | all | {totals[setup]:.2f} | | | {memory[setup]:.0f} |")
    ratio = totals["one node"] / totals["separate nodes"] if totals["separate nodes"] else float("inf")
    print(f"\none node / separate nodes, answered frames per second: {ratio:.2f}x")
