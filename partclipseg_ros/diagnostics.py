"""Frame statistics for /diagnostics, and the throttle for repeated log lines."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from .latest_frame import WorkerCounts

THROTTLE_KEYS = 256  # beyond this many remembered messages, those whose period is over are forgotten


@dataclass(frozen=True)
class StatsWindow:
    """What happened since the previous snapshot."""

    seconds: float
    input_hz: float
    output_hz: float
    latency_ms_mean: float  # header stamp -> publish
    latency_ms_max: float
    model_ms_mean: float  # the core's own timings (preprocess + encode + decode + postprocess)
    published: int
    total_published: int
    total_rejected: int
    last_error: str
    last_error_age_s: float  # -1 when there was none


@dataclass
class _Counts:
    received: int = 0
    published: int = 0
    latency: list[float] = field(default_factory=list)
    model: list[float] = field(default_factory=list)


class FrameStats:
    """Thread-safe counters fed by the subscriber callback and the worker thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._window = _Counts()
        self._window_start = clock()
        self._total_published = 0
        self._total_rejected = 0
        self._last_error = ""
        self._last_error_time: float | None = None
        self.last_input_time: float | None = None

    def received(self) -> None:
        with self._lock:
            self._window.received += 1
            self.last_input_time = self._clock()

    def published(self, latency_ms: float, model_ms: float) -> None:
        with self._lock:
            self._window.published += 1
            self._window.latency.append(latency_ms)
            self._window.model.append(model_ms)
            self._total_published += 1

    def error(self, message: str, rejected_frame: bool = False) -> None:
        with self._lock:
            self._last_error = message
            self._last_error_time = self._clock()
            self._total_rejected += rejected_frame

    def snapshot(self) -> StatsWindow:
        """The statistics since the previous snapshot (and the totals); starts a new window."""
        with self._lock:
            now = self._clock()
            window, self._window = self._window, _Counts()
            seconds = max(now - self._window_start, 1e-9)
            self._window_start = now
            latency, model = window.latency, window.model
            return StatsWindow(
                seconds=seconds,
                input_hz=window.received / seconds,
                output_hz=window.published / seconds,
                latency_ms_mean=sum(latency) / len(latency) if latency else 0.0,
                latency_ms_max=max(latency, default=0.0),
                model_ms_mean=sum(model) / len(model) if model else 0.0,
                published=window.published,
                total_published=self._total_published,
                total_rejected=self._total_rejected,
                last_error=self._last_error,
                last_error_age_s=now - self._last_error_time if self._last_error_time is not None else -1.0,
            )


@dataclass(frozen=True)
class GeometryWindow:
    """The 3D stage since the previous snapshot."""

    seconds: float
    frames_3d: int  # frames with an AffordanceArray in this window
    stage_ms_mean: float  # pairing wait excluded: geometry + transform + messages + publish
    total_3d: int
    total_2d_only: int  # frames a 3D consumer wanted but that had no usable depth / camera_info / TF
    total_markers: int  # MarkerArrays published
    total_withheld: int  # parts found in 2D whose 3D region was not published: implausible, no usable depth
    last_problem: str
    last_problem_age_s: float  # -1 when there was none


class GeometryStats:
    """Thread-safe counters of the 3D stage (fed by the worker thread)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._window_ms: list[float] = []
        self._total_3d = self._total_2d_only = self._total_markers = self._total_withheld = 0
        self._last_problem = ""
        self._last_problem_time: float | None = None

    def published(self, stage_ms: float, markers: bool) -> None:
        with self._lock:
            self._window_ms.append(stage_ms)
            self._total_3d += 1
            self._total_markers += markers

    def markers_only(self) -> None:
        with self._lock:
            self._total_markers += 1

    def problem(self, message: str) -> None:
        """A frame published in 2D only, and why."""
        with self._lock:
            self._total_2d_only += 1
            self._last_problem = message
            self._last_problem_time = self._clock()

    def withheld(self, message: str) -> None:
        """A part whose 3D region was not published (its inputs or mask cannot be trusted), and why."""
        with self._lock:
            self._total_withheld += 1
            self._last_problem = message
            self._last_problem_time = self._clock()

    def snapshot(self) -> GeometryWindow:
        with self._lock:
            now = self._clock()
            times, self._window_ms = self._window_ms, []
            seconds, self._window_start = max(now - self._window_start, 1e-9), now
            return GeometryWindow(
                seconds=seconds,
                frames_3d=len(times),
                stage_ms_mean=sum(times) / len(times) if times else 0.0,
                total_3d=self._total_3d,
                total_2d_only=self._total_2d_only,
                total_markers=self._total_markers,
                total_withheld=self._total_withheld,
                last_problem=self._last_problem,
                last_problem_age_s=now - self._last_problem_time if self._last_problem_time is not None else -1.0,
            )


class Throttle:
    """Lets the same message (or key) through at most once per ``period`` seconds and counts what it held back."""

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, message: str, key: str | None = None) -> str | None:
        """The line to log now (with the number of lines held back), or None to stay quiet. Lines with the same
        ``key`` (default: the message itself) count as identical: use one for messages that carry numbers."""
        key = message if key is None else key
        with self._lock:
            now = self._clock()
            if len(self._last) > THROTTLE_KEYS:  # bounded: ever new messages must not grow memory
                self._forget(now)
            last = self._last.get(key)
            if last is not None and now - last < self.period:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            held = self._held.pop(key, 0)
            return f"{message} ({held} more like this since)" if held else message

    def _forget(self, now: float) -> None:
        """Drop the keys whose period is over and that hold nothing back (they throttle nothing any more)."""
        for key in [k for k, t in self._last.items() if now - t >= self.period and k not in self._held]:
            del self._last[key]


def diagnostic_status(
    name: str,
    hardware_id: str,
    level: bytes,
    message: str,
    window: StatsWindow,
    worker: WorkerCounts | None,
    values: dict[str, str],
) -> DiagnosticStatus:
    """One DiagnosticStatus with the window's rates and latencies, the worker's counters and ``values``."""
    pairs = {
        "input_rate_hz": f"{window.input_hz:.2f}",
        "output_rate_hz": f"{window.output_hz:.2f}",
        "latency_ms_mean": f"{window.latency_ms_mean:.1f}",
        "latency_ms_max": f"{window.latency_ms_max:.1f}",
        "model_ms_mean": f"{window.model_ms_mean:.1f}",
        "window_s": f"{window.seconds:.2f}",
        "window_published": str(window.published),
        "frames_published": str(window.total_published),
        "frames_rejected": str(window.total_rejected),
        "last_error": window.last_error,
        "last_error_age_s": f"{window.last_error_age_s:.1f}",
    }
    if worker is not None:
        pairs.update(
            frames_received=str(worker.submitted),
            frames_processed=str(worker.processed),
            frames_dropped=str(worker.dropped),
            frames_failed=str(worker.failed),
            frames_batched=str(worker.batched),
            queue_length=str(worker.waiting),
        )
    pairs.update(values)
    return _status(name, hardware_id, level, message, pairs)


def affordance_status(name: str, hardware_id: str, level: bytes, message: str, window: GeometryWindow,
                      values: dict[str, str]) -> DiagnosticStatus:
    """The 3D stage's DiagnosticStatus: frames with and without 3D, its cost, the last problem and ``values``."""
    pairs = {
        "frames_3d": str(window.total_3d),
        "frames_2d_only": str(window.total_2d_only),
        "markers_published": str(window.total_markers),
        "parts_withheld": str(window.total_withheld),
        "window_frames_3d": str(window.frames_3d),
        "stage_ms_mean": f"{window.stage_ms_mean:.2f}",
        "last_problem": window.last_problem,
        "last_problem_age_s": f"{window.last_problem_age_s:.1f}",
        **values,
    }
    return _status(name, hardware_id, level, message, pairs)


def _status(name: str, hardware_id: str, level: bytes, message: str, pairs: dict[str, str]) -> DiagnosticStatus:
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in pairs.items()])
