"""What a viewer's transport-cc feedback says of its link: delivered rate, loss, queuing
delay, and the rate each probe got through.

Every packet sent to the viewer is noted with its transport sequence number, size, send
time and the probe it belonged to (if any); each feedback packet gives the arrival time of
each (receiver's clock, offset unknown). From those, after libwebrtc's send-side estimator:

- **probe rate** (``probe_bitrate_estimator.cc``): of the packets sent while a probe ran, at
  least 80 % must arrive; the rate sent is their bytes but the last over the send span, the
  rate received is measured the same way over the arrivals from a third of the way in (the
  first may pass at line rate while a token bucket holds a burst); the probe's result is the
  lower, and when the link delivered under 90 % of what was sent (it is saturated), 95 % of
  the rate received;
- **delivered rate**: bytes received over the last ``RATE_WINDOW_S`` of arrivals;
- **queuing delay**: the one-way delay (arrival - send, with the unknown clock offset) of
  the first packet of each send burst (packets sent within ``GROUP_S``, libwebrtc's packet
  groups) less the lowest seen in the last ``BASE_WINDOW_S``: a burst's later packets wait
  behind its own first ones (a keyframe sent at once), which says nothing of the link;
  what the next burst waits for does;
- **loss**: the share of reported packets that never arrived.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from streamlab.webrtc.twcc import Arrival

SLOTS = 8192  # packets remembered (a few seconds at 3 Mbit/s)
RATE_WINDOW_S = 0.5
BASE_WINDOW_S = 10.0
MIN_PROBE_PACKETS = 5
MIN_RECEIVED_SHARE = 0.8
SATURATED = 0.9
SATURATED_SHARE = 0.95
MAX_PROBE_SPAN_S = 1.0
GROUP_S = 0.005


@dataclass(slots=True)
class _Sent:
    seq: int
    at: float
    size: int
    probe: int | None


@dataclass(slots=True)
class ProbeCluster:
    """The packets of one probe, as reported back."""

    sent: list[tuple[float, int]] = field(default_factory=list)  # (send at, size)
    received: list[tuple[float, float, int]] = field(default_factory=list)  # (sent, arrived, size)
    last_seq: int | None = None
    reported_through: bool = False

    def rate_bps(self) -> float | None:
        """The rate the link carried this probe at (None: too few packets came back)."""
        if len(self.sent) < MIN_PROBE_PACKETS:
            return None
        if len(self.received) < MIN_RECEIVED_SHARE * len(self.sent):
            return None
        by_send = sorted(self.received)
        send_span = by_send[-1][0] - by_send[0][0]
        # the rate received from a third of the way in: the first packets may pass at line
        # rate while the link's token bucket still holds a burst, or the queue is empty
        by_arrival = sorted(self.received, key=lambda r: r[1])
        tail = by_arrival[min(len(by_arrival) // 3, len(by_arrival) - MIN_PROBE_PACKETS + 1) :]
        recv_span = tail[-1][1] - tail[0][1]
        if send_span <= 0 or recv_span <= 0 or max(send_span, recv_span) > MAX_PROBE_SPAN_S:
            return None
        send_bps = sum(size for _, _, size in by_send[:-1]) * 8 / send_span
        recv_bps = sum(size for _, _, size in tail[1:]) * 8 / recv_span
        if recv_bps < SATURATED * send_bps:
            return SATURATED_SHARE * recv_bps
        return min(send_bps, recv_bps)


class TransportFeedback:
    """Per viewer: note what is sent (``on_sent``), feed the feedback (``on_feedback``)."""

    def __init__(self) -> None:
        self._slots: list[_Sent | None] = [None] * SLOTS
        self.probes: dict[int, ProbeCluster] = {}
        self.reports = 0
        self.received = 0
        self.lost = 0
        self.queue_delay_s: float | None = None
        self._delivered: deque[tuple[float, int]] = deque(maxlen=SLOTS)  # (arrived, size)
        self._bases: deque[tuple[float, float]] = deque(maxlen=256)  # (sent at, min delay)
        self._loss_window: deque[tuple[float, bool]] = deque(maxlen=SLOTS)
        self.last_feedback_at: float | None = None
        self._group_sent_at = float("-inf")

    def on_sent(self, seq: int, size: int, at: float, probe: int | None) -> None:
        self._slots[seq % SLOTS] = _Sent(seq, at, size, probe)
        if probe is not None:
            cluster = self.probes.setdefault(probe, ProbeCluster())
            cluster.sent.append((at, size))
            cluster.last_seq = seq
            cluster.reported_through = False
            while len(self.probes) > 8:
                del self.probes[min(self.probes)]

    def on_feedback(self, arrivals: list[Arrival], at: float) -> None:
        """One feedback packet; ``at`` is when it came (the sender's clock)."""
        self.reports += 1
        self.last_feedback_at = at
        lowest: float | None = None
        latest_delay: float | None = None
        for arrival in arrivals:
            sent = self._slots[arrival.seq % SLOTS]
            if sent is None or sent.seq != arrival.seq:
                continue
            self._loss_window.append((at, arrival.at is not None))
            cluster = self.probes.get(sent.probe) if sent.probe is not None else None
            if cluster is not None and sent.seq == cluster.last_seq:
                cluster.reported_through = True
            if arrival.at is None:
                self.lost += 1
                continue
            self.received += 1
            self._delivered.append((arrival.at, sent.size))
            delay = arrival.at - sent.at
            lowest = delay if lowest is None else min(lowest, delay)
            if sent.at - self._group_sent_at > GROUP_S:  # the first packet of a burst
                self._group_sent_at = sent.at
                latest_delay = delay
            if cluster is not None:
                cluster.received.append((sent.at, arrival.at, sent.size))
        if lowest is not None:
            self._bases.append((at, lowest))
            while self._bases and self._bases[0][0] < at - BASE_WINDOW_S:
                self._bases.popleft()
        if latest_delay is not None and self._bases:
            base = min(b for _, b in self._bases)
            self.queue_delay_s = max(0.0, latest_delay - base)
        while self._loss_window and self._loss_window[0][0] < at - 1.0:
            self._loss_window.popleft()

    def probe_rate(self, probe: int) -> float | None:
        """The probe's measured rate once its last packet was reported (None: not yet, or
        too few packets came back to tell)."""
        cluster = self.probes.get(probe)
        if cluster is None or not cluster.reported_through:
            return None
        return cluster.rate_bps()

    def probe_reported(self, probe: int) -> bool:
        cluster = self.probes.get(probe)
        return cluster is not None and cluster.reported_through

    @property
    def delivered_bps(self) -> float | None:
        """Bytes received over the last ``RATE_WINDOW_S`` of arrivals (None: too few)."""
        if len(self._delivered) < 2:
            return None
        newest = self._delivered[-1][0]
        recent = [size for arrived, size in self._delivered if arrived >= newest - RATE_WINDOW_S]
        if len(recent) < 5:
            return None
        return sum(recent) * 8 / RATE_WINDOW_S

    @property
    def loss(self) -> float:
        """The share of the packets reported in the last second that never arrived."""
        if not self._loss_window:
            return 0.0
        return sum(1 for _, got in self._loss_window if not got) / len(self._loss_window)
