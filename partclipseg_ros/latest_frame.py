"""Latest-frame-only processing: one waiting slot per camera and one worker thread.

The subscriber callbacks only :meth:`~LatestFrameWorker.submit`; inference runs in the worker thread. A frame that
arrives while another of the same camera is waiting replaces it (the replaced one is counted as dropped). The
worker takes the waiting frames of every camera at once and processes them together (one batch), so at most one
frame per camera waits, no camera waits behind another's backlog, and a camera that stops never holds the others.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerCounts:
    submitted: int
    processed: int  # taken by process() (which returned or raised)
    dropped: int  # replaced by a newer item before processing, or discarded at stop()
    failed: int  # process() raised on a batch holding it
    batched: int  # processed together with another camera's frame
    waiting: int  # 0 or 1 per camera
    busy: bool


@dataclass
class _Counter:
    submitted: int = 0
    processed: int = 0
    dropped: int = 0
    failed: int = 0
    batched: int = 0


class LatestFrameWorker(Generic[T]):
    """Calls ``process(items)`` in its own thread on the newest submitted item of every key (camera) waiting,
    in the order the keys were first seen; ``process`` may return a failure flag per item (errors it handled).
    ``on_error(items, exc)`` gets every exception ``process`` raises; the worker keeps going."""

    def __init__(
        self,
        process: Callable[[list[T]], Sequence[bool] | None],
        on_error: Callable[[list[T], Exception], None],
        name: str = "partclipseg-worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._name = name
        self._cond = threading.Condition()
        self._slots: dict[str, T] = {}
        self._counters: dict[str, _Counter] = {}
        self._busy = False
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the batch being processed (if any); waiting items are discarded. False on timeout."""
        with self._cond:
            self._running = False
            for key in self._slots:
                self._counters[key].dropped += 1
            self._slots.clear()
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def submit(self, item: T, key: str = "") -> bool:
        """Put ``item`` in the slot of ``key``; True if it replaced a waiting item (which is then dropped)."""
        with self._cond:
            counter = self._counters.setdefault(key, _Counter())
            counter.submitted += 1
            replaced = key in self._slots
            counter.dropped += replaced
            self._slots[key] = item
            self._cond.notify()
            return replaced

    def counts(self, key: str | None = None) -> WorkerCounts:
        """The counts of one key, or of all together (None)."""
        with self._cond:
            counters = [self._counters.get(key, _Counter())] if key is not None else list(self._counters.values())
            waiting = (key in self._slots) if key is not None else len(self._slots)
            return WorkerCounts(sum(c.submitted for c in counters), sum(c.processed for c in counters),
                                sum(c.dropped for c in counters), sum(c.failed for c in counters),
                                sum(c.batched for c in counters), int(waiting), self._busy)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._slots:
                    self._cond.wait()
                if not self._running:
                    return
                keys = [key for key in self._counters if key in self._slots]
                batch = [self._slots.pop(key) for key in keys]
                self._busy = True
            failed: Sequence[bool] = [False] * len(batch)
            try:
                failed = self._process(batch) or failed
            except Exception as exc:  # noqa: BLE001 - one bad batch must never stop the worker
                failed = [True] * len(batch)
                self._on_error(batch, exc)
            finally:
                with self._cond:
                    self._busy = False
                    for key, item_failed in zip(keys, failed):
                        self._counters[key].processed += 1
                        self._counters[key].failed += bool(item_failed)
                        self._counters[key].batched += len(keys) > 1
