"""The latest-frame worker (pure Python, no ROS): one slot per camera, newest item wins, errors never stop it."""
from __future__ import annotations

import threading
import time

from partclipseg_ros.latest_frame import LatestFrameWorker


def wait_until(condition, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_a_busy_worker_keeps_only_the_newest_item():
    done, release = [], threading.Event()

    def process(items: list[int]) -> None:
        release.wait(10)
        done.extend(items)

    worker = LatestFrameWorker(process, on_error=lambda items, exc: None)
    worker.start()
    worker.submit(0)
    wait_until(lambda: worker.counts().busy)  # 0 is being processed
    replaced = [worker.submit(i) for i in range(1, 31)]
    counts = worker.counts()
    assert replaced == [False] + [True] * 29
    assert (counts.submitted, counts.dropped, counts.waiting, counts.busy) == (31, 29, 1, True)
    release.set()
    wait_until(lambda: worker.counts().processed == 2)
    assert done == [0, 30]
    assert worker.stop(timeout=5)
    assert worker.counts().waiting == 0


def test_errors_are_reported_and_the_worker_goes_on():
    errors, done = [], []

    def process(items: list[int]) -> None:
        if items[0] % 2:
            raise ValueError(f"bad {items[0]}")
        done.extend(items)

    worker = LatestFrameWorker(process, on_error=lambda items, exc: errors.append((items[0], str(exc))))
    worker.start()
    for item in range(6):
        worker.submit(item)
        wait_until(lambda: worker.counts().processed == item + 1)
    assert done == [0, 2, 4] and errors == [(1, "bad 1"), (3, "bad 3"), (5, "bad 5")]
    assert worker.counts().failed == 3
    assert worker.stop(timeout=5)


def test_stop_discards_the_waiting_item_and_restart_works():
    release = threading.Event()
    done = []
    worker = LatestFrameWorker(lambda items: (release.wait(10), done.extend(items)) and None, on_error=lambda i, e: None)
    worker.start()
    worker.submit("a")
    wait_until(lambda: worker.counts().busy)
    worker.submit("b")
    stopper = threading.Thread(target=worker.stop, args=(5,))
    stopper.start()
    wait_until(lambda: worker.counts().waiting == 0)  # stop() took "b" out while "a" is still being processed
    release.set()
    stopper.join(5)
    assert done == ["a"] and worker.counts().dropped == 1 and worker.counts().waiting == 0
    worker.start()
    worker.submit("c")
    wait_until(lambda: done == ["a", "c"])
    assert worker.stop(timeout=5)


def test_every_waiting_camera_is_served_in_one_batch_and_none_waits_for_another():
    batches, release = [], threading.Event()

    def process(items: list[str]) -> list[bool]:
        release.wait(10)
        batches.append(items)
        return [item.endswith("!") for item in items]  # failures the processor handled itself

    worker = LatestFrameWorker(process, on_error=lambda items, exc: None)
    worker.start()
    worker.submit("head 0", "head")
    wait_until(lambda: worker.counts().busy)
    for i in range(1, 6):  # the head camera at 5x the wrist's rate while the model is busy
        worker.submit(f"head {i}", "head")
    worker.submit("wrist 0!", "wrist")
    assert worker.counts("head").waiting == 1 and worker.counts("wrist").waiting == 1 and worker.counts().waiting == 2
    release.set()
    wait_until(lambda: worker.counts().processed == 3)
    assert batches == [["head 0"], ["head 5", "wrist 0!"]]  # newest of each, together, in first-seen key order
    head, wrist = worker.counts("head"), worker.counts("wrist")
    assert (head.submitted, head.processed, head.dropped, head.failed, head.batched) == (6, 2, 4, 0, 1)
    assert (wrist.submitted, wrist.processed, wrist.dropped, wrist.failed, wrist.batched) == (1, 1, 0, 1, 1)
    worker.submit("wrist 1", "wrist")  # the head camera stopped: the wrist is served alone
    wait_until(lambda: worker.counts("wrist").processed == 2)
    assert batches[-1] == ["wrist 1"]
    assert worker.stop(timeout=5)
