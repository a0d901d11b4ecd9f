"""Pairing each camera frame with the depth image (or camera_info) closest to it in stamp; no message_filters.

One :class:`StampSync` per stream. The stream's callback :meth:`~StampSync.add`\\ s every message; the image
callback asks :meth:`~StampSync.pair` for a :class:`Pairing` with the frame's stamp, which travels with the frame
through the latest-frame worker. A pairing starts with the closest message already received and takes every closer
one that arrives later, until the worker :meth:`~Pairing.resolve`\\ s it after the model has run; if by then no
message stamped at or after the frame has arrived (a closer one may still come), it waits, at most until a deadline.

Memory is bounded whatever the rates: the stream keeps its last ``capacity`` messages (by stamp), and only the last
:data:`OPEN_PAIRINGS` pairings take late messages (the worker holds at most two frames: one waiting, one in hand;
a replaced frame's pairing just falls out). Pure Python (no rclpy): stamps are integer nanoseconds.
"""
from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
OPEN_PAIRINGS = 4


@dataclass(frozen=True)
class Match(Generic[T]):
    """The outcome of a pairing: ``item`` is the closest message within the slop (None if there is none)."""

    item: T | None
    offset_ns: int | None  # stamp of the closest message seen minus the frame's stamp; None: none was seen

    @property
    def found(self) -> bool:
        return self.item is not None


class Pairing(Generic[T]):
    """The closest message of one stream to one frame stamp, improving as messages arrive (see the module)."""

    def __init__(self, sync: "StampSync[T]", stamp_ns: int) -> None:
        self.stamp_ns = stamp_ns
        self._sync = sync
        self._best: tuple[int, T] | None = None
        self._settled = False  # a message stamped at or after the frame arrived: in-order streams bring no closer one

    def offer(self, stamp_ns: int, item: T) -> None:
        """Take ``item`` if it is closer than the best so far (ties keep the first). Called under the sync's lock."""
        if self._best is None or abs(stamp_ns - self.stamp_ns) < abs(self._best[0] - self.stamp_ns):
            self._best = (stamp_ns, item)
        self._settled |= stamp_ns >= self.stamp_ns

    def resolve(self, slop_ns: int, deadline: float) -> Match[T]:
        """The closest message within ``slop_ns``; waits (until ``deadline``, monotonic seconds) while a closer one
        may still arrive. The pairing takes no messages afterwards."""
        return self._sync._resolve(self, slop_ns, deadline)

    def _match(self, slop_ns: int) -> Match[T]:
        if self._best is None:
            return Match(None, None)
        stamp, item = self._best
        offset = stamp - self.stamp_ns
        return Match(item if abs(offset) <= slop_ns else None, offset)


class StampSync(Generic[T]):
    """The last ``capacity`` messages of one stream, ordered by stamp, and the open pairings (thread-safe)."""

    def __init__(self, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._clock = clock
        self._cond = threading.Condition()
        self._stamps: list[int] = []
        self._items: list[T] = []
        self._open: deque[Pairing[T]] = deque(maxlen=OPEN_PAIRINGS)
        self.received = 0

    def add(self, stamp_ns: int, item: T) -> None:
        """Keep a message (one with the stamp of a kept one replaces it); the oldest stamp goes when full."""
        with self._cond:
            self.received += 1
            index = bisect.bisect_left(self._stamps, stamp_ns)
            if index < len(self._stamps) and self._stamps[index] == stamp_ns:
                self._items[index] = item
            else:
                self._stamps.insert(index, stamp_ns)
                self._items.insert(index, item)
                if len(self._stamps) > self.capacity:
                    del self._stamps[0], self._items[0]
            for pairing in self._open:
                pairing.offer(stamp_ns, item)
            self._cond.notify_all()

    def pair(self, stamp_ns: int) -> Pairing[T]:
        """A pairing for a frame stamped ``stamp_ns``, seeded with the kept messages nearest to it."""
        pairing = Pairing(self, stamp_ns)
        with self._cond:
            index = bisect.bisect_left(self._stamps, stamp_ns)
            for i in (index - 1, index):  # the neighbours in stamp order; index also settles it when it exists
                if 0 <= i < len(self._stamps):
                    pairing.offer(self._stamps[i], self._items[i])
            self._open.append(pairing)
        return pairing

    def clear(self) -> None:
        """Forget the kept messages and the open pairings (deactivate)."""
        with self._cond:
            self._stamps.clear()
            self._items.clear()
            self._open.clear()

    def __len__(self) -> int:
        with self._cond:
            return len(self._stamps)

    def _resolve(self, pairing: Pairing[T], slop_ns: int, deadline: float) -> Match[T]:
        with self._cond:
            while not pairing._settled and (remaining := deadline - self._clock()) > 0:
                self._cond.wait(remaining)
            if pairing in self._open:
                self._open.remove(pairing)
            return pairing._match(slop_ns)
