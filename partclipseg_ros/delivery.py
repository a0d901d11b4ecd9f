"""Why frames do not arrive: the diagnosis of an input subscription from its counts and its publishers (pure
Python; the node feeds it once per diagnostics period). docs/ros.md, "Camera frames do not arrive"."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rclpy.qos import ReliabilityPolicy

from .defaults import LOSS_MIN_FRAMES, LOSS_SHARE, LOSS_WINDOW_S, NO_INPUT_WARNING_S

NO_PUBLISHER, TRANSPORT, NOTHING_SENT, STOPPED = "no publisher", "transport", "nothing sent", "stopped"


@dataclass(frozen=True)
class DeliverySample:
    """One input subscription at one moment."""

    time: float  # monotonic seconds
    received: int  # messages received since activation
    lost: int  # messages the middleware reported lost since activation
    publishers: tuple[ReliabilityPolicy, ...]  # reliability of each publisher on the topic
    subscribed: ReliabilityPolicy  # this subscription's reliability
    idle_s: float  # seconds since the last message (or since activation)


def fixes(profile: str) -> str:
    return (f"start the camera with this package's Fast DDS profile (FASTDDS_DEFAULT_PROFILES_FILE={profile}), make "
            "the camera publish reliable, or set image_transport:=compressed (the camera's compressed topic)")


class DeliveryMonitor:
    """Diagnoses one topic: no publisher, publishers whose messages do not arrive or get lost on the way, a
    publisher that stopped."""

    def __init__(self, topic: str, profile: str) -> None:
        self.topic, self.profile = topic, profile
        self._history: deque[DeliverySample] = deque()
        self._matched: tuple[float, int] | None = None  # (time, received) when publishers (re)appeared

    def diagnose(self, sample: DeliverySample, required: bool = True) -> tuple[str, str] | None:
        """(kind, message) of what is wrong now, or None when delivery is fine. Kinds: NO_PUBLISHER, TRANSPORT,
        NOTHING_SENT, STOPPED. An input that is not ``required`` (depth while nobody wants 3D) is not reported for
        having no publisher."""
        self._history.append(sample)
        while self._history and sample.time - self._history[0].time > LOSS_WINDOW_S:
            self._history.popleft()
        if not sample.publishers:
            self._matched = None
            if required and sample.idle_s > NO_INPUT_WARNING_S:
                return NO_PUBLISHER, (f"nothing for {sample.idle_s:.0f} s: no publisher on {self.topic} (remap the "
                                      "input to the camera's topic, and check that the camera runs)")
            return None
        if self._matched is None:
            self._matched = (sample.time, sample.received)
        compatible = [p for p in sample.publishers
                      if sample.subscribed != ReliabilityPolicy.RELIABLE or p == ReliabilityPolicy.RELIABLE]
        if not compatible:
            return None  # the subscription's incompatible-QoS event says what to set
        best_effort = any(p != ReliabilityPolicy.RELIABLE for p in compatible)
        since, received_then = self._matched
        waited = min(sample.idle_s, sample.time - since)
        if waited > NO_INPUT_WARNING_S:
            if sample.received > received_then:
                return STOPPED, (f"no message on {self.topic} for {sample.idle_s:.0f} s although its publisher is "
                                 "there: the camera stopped sending, or its messages are lost on the way")
            if best_effort:
                return TRANSPORT, (
                    f"{len(compatible)} best-effort publisher(s) on {self.topic} with compatible QoS, but no message "
                    f"arrived in {waited:.0f} s: most likely its messages are larger than the middleware's default "
                    "shared-memory segment (512 KB) and go over UDP, where best-effort samples between processes are "
                    f"lost. Fix: {fixes(self.profile)}")
            return NOTHING_SENT, (f"{len(compatible)} reliable publisher(s) on {self.topic} but no message in "
                                  f"{waited:.0f} s: check that the camera is streaming")
        first = self._history[0]
        received, lost = sample.received - first.received, sample.lost - first.lost
        if lost >= LOSS_MIN_FRAMES and lost >= LOSS_SHARE * (received + lost):
            return TRANSPORT, (
                f"{lost} of {received + lost} messages on {self.topic} lost in transport in the last "
                f"{sample.time - first.time:.0f} s (the middleware reported them lost; "
                f"{'best-effort' if best_effort else 'reliable'} publisher): most likely large messages over the "
                f"middleware's default transport. Fix: {fixes(self.profile)}")
        return None
