"""The stamp matcher that pairs frames with depth and camera_info (pure Python: no DDS, real threads)."""
from __future__ import annotations

import threading
import time

import pytest

from partclipseg_ros.stamp_sync import OPEN_PAIRINGS, StampSync

MS = 1_000_000
SLOP = 10 * MS


def now_plus(seconds: float) -> float:
    return time.monotonic() + seconds


def test_exact_stamp_wins_over_a_neighbour_within_the_slop():
    sync = StampSync(capacity=5)
    for stamp in (90, 97, 100, 103):
        sync.add(stamp * MS, f"d{stamp}")
    match = sync.pair(100 * MS).resolve(SLOP, now_plus(0))
    assert (match.item, match.offset_ns) == ("d100", 0)


def test_closest_within_the_slop_on_either_side():
    sync = StampSync(capacity=5)
    sync.add(96 * MS, "older")
    sync.add(103 * MS, "newer")
    assert sync.pair(100 * MS).resolve(SLOP, now_plus(0)).item == "newer"  # 3 ms beats 4 ms
    assert sync.pair(99 * MS).resolve(SLOP, now_plus(0)).item == "older"  # 3 ms beats 4 ms
    tie = sync.pair(int(99.5 * MS)).resolve(SLOP, now_plus(0))
    assert tie.item == "older" and tie.offset_ns == int(-3.5 * MS)  # equal distance: the first one offered


def test_stale_depth_is_not_paired_and_says_how_far_off_it_is():
    sync = StampSync(capacity=5)
    sync.add(100 * MS, "old")
    match = sync.pair(250 * MS).resolve(SLOP, now_plus(0.05))  # waits for a closer one until the deadline
    assert not match.found and match.offset_ns == -150 * MS
    assert sync.pair(250 * MS).resolve(200 * MS, now_plus(0)).item == "old"  # a wider slop accepts it


def test_nothing_received_gives_no_offset():
    sync = StampSync(capacity=5)
    start = time.monotonic()
    match = sync.pair(100 * MS).resolve(SLOP, now_plus(0.05))
    assert match.item is None and match.offset_ns is None
    assert time.monotonic() - start >= 0.045  # it waited for one to arrive, up to the deadline


def test_depth_arriving_after_the_image_is_taken():
    """The common case: the aligned depth of a frame arrives a little after the colour image."""
    sync = StampSync(capacity=5)
    sync.add(67 * MS, "previous frame")
    pairing = sync.pair(100 * MS)
    threading.Timer(0.05, sync.add, (100 * MS, "same frame")).start()
    start = time.monotonic()
    match = pairing.resolve(40 * MS, now_plus(5.0))
    assert match.item == "same frame" and match.offset_ns == 0
    assert time.monotonic() - start < 2.0  # returned when it arrived, not at the deadline


def test_resolution_does_not_wait_once_a_message_at_or_after_the_frame_is_there():
    sync = StampSync(capacity=5)
    sync.add(95 * MS, "a")
    sync.add(130 * MS, "b")  # after the frame: an in-order stream brings nothing closer than a
    start = time.monotonic()
    assert sync.pair(100 * MS).resolve(SLOP, now_plus(5.0)).item == "a"
    assert time.monotonic() - start < 1.0


def test_out_of_order_arrivals_are_kept_in_stamp_order():
    sync = StampSync(capacity=3)
    for stamp in (300, 100, 200, 50):  # 50 arrives last and is the oldest: it is the one dropped
        sync.add(stamp * MS, f"d{stamp}")
    assert len(sync) == 3 and sync.received == 4
    assert sync.pair(101 * MS).resolve(SLOP, now_plus(0)).item == "d100"
    assert sync.pair(199 * MS).resolve(SLOP, now_plus(0)).item == "d200"
    assert sync.pair(52 * MS).resolve(SLOP, now_plus(0)).offset_ns == 48 * MS  # d50 is gone; d100 is the closest


def test_a_late_out_of_order_message_still_improves_an_open_pairing():
    sync = StampSync(capacity=5)
    sync.add(110 * MS, "later")  # already settled: a message after the frame is there
    pairing = sync.pair(100 * MS)
    sync.add(100 * MS, "exact, late")
    assert pairing.resolve(SLOP, now_plus(0)).item == "exact, late"


def test_capacity_bounds_the_kept_messages_and_a_same_stamp_message_replaces():
    sync = StampSync(capacity=2)
    for stamp in range(10):
        sync.add(stamp * 100 * MS, stamp)
    sync.add(900 * MS, "again")
    assert len(sync) == 2 and sync.received == 11
    assert sync.pair(900 * MS).resolve(SLOP, now_plus(0)).item == "again"
    assert not sync.pair(100 * MS).resolve(SLOP, now_plus(0)).found


def test_only_the_newest_pairings_take_late_messages_and_a_resolved_one_takes_none():
    sync = StampSync(capacity=5)
    pairings = [sync.pair(stamp * MS) for stamp in range(OPEN_PAIRINGS + 2)]
    resolved = pairings[-1].resolve(SLOP, now_plus(0))
    for stamp in range(OPEN_PAIRINGS + 2):
        sync.add(stamp * MS, stamp)
    assert resolved.item is None
    late = [p.resolve(SLOP, now_plus(0)).item for p in pairings[:-1]]
    # the two oldest fell out of the open list when newer frames arrived (replaced frames), the others took theirs
    assert late == [None, None] + list(range(2, OPEN_PAIRINGS + 1))


def test_clear_forgets_everything():
    sync = StampSync(capacity=5)
    sync.add(100 * MS, "x")
    pairing = sync.pair(200 * MS)
    sync.clear()
    sync.add(200 * MS, "y")
    assert len(sync) == 1 and pairing.resolve(SLOP, now_plus(0)).offset_ns == -100 * MS


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        StampSync(capacity=0)
