"""Latest-frame-only processing: one waiting slot and one worker thread.

The subscriber callback only :meth:`~LatestFrameWorker.submit`\\ s; inference runs in the worker thread. A frame
that arrives while another is waiting replaces it (the replaced one is counted as dropped), so at most one frame
waits and one is processed: never a backlog, never output older than one frame.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerCounts:
    submitted: int
    processed: int  # process() returned or raised
    dropped: int  # replaced by a newer item before processing, or discarded at stop()
    failed: int  # process() raised
    waiting: int  # 0 or 1
    busy: bool


class LatestFrameWorker(Generic[T]):
    """Calls ``process(item)`` in its own thread on the newest submitted item.

    ``on_error(item, exc)`` gets every exception ``process`` raises; the worker keeps going.
    """

    def __init__(
        self,
        process: Callable[[T], None],
        on_error: Callable[[T, Exception], None],
        name: str = "partclipseg-worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._name = name
        self._cond = threading.Condition()
        self._slot: list[T] = []  # holds at most one item
        self._busy = False
        self._running = False
        self._thread: threading.Thread | None = None
        self._submitted = self._processed = self._dropped = self._failed = 0

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the item being processed (if any); the waiting item is discarded. False on timeout."""
        with self._cond:
            self._running = False
            self._dropped += len(self._slot)
            self._slot.clear()
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def submit(self, item: T) -> bool:
        """Put ``item`` in the slot; True if it replaced a waiting item (which is then dropped)."""
        with self._cond:
            self._submitted += 1
            replaced = bool(self._slot)
            if replaced:
                self._dropped += 1
            self._slot[:] = [item]
            self._cond.notify()
            return replaced

    def counts(self) -> WorkerCounts:
        with self._cond:
            return WorkerCounts(self._submitted, self._processed, self._dropped, self._failed, len(self._slot),
                                self._busy)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._slot:
                    self._cond.wait()
                if not self._running:
                    return
                item = self._slot.pop()
                self._busy = True
            failed = False
            try:
                self._process(item)
            except Exception as exc:  # noqa: BLE001 - one bad frame must never stop the worker
                failed = True
                self._on_error(item, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._processed += 1
                    self._failed += failed
