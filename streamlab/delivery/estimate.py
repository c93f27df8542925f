"""A viewer's available bandwidth, from its own RTCP feedback.

Inputs (all from the viewer, never from the emulated link): REMB (the receiver's
delay-based estimate), receiver reports (fraction lost, cumulative loss, highest sequence
number, jitter; RTT from the sender report they answer) and NACKs (a fast loss signal).

Rules, after libwebrtc's loss-based controller (``send_side_bandwidth_estimation.cc``):
loss ≤ 2 %: grow 8 % over the lowest target of the last second; 2-10 %: hold; > 10 %: cut
to what actually got through (0.85 of the received rate), at most once per 300 ms + RTT;
no verdict on fewer than 20 packets. REMB caps the estimate when it signals overuse.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MIN_PACKETS = 20
LOW_LOSS = 0.02
HIGH_LOSS = 0.10
NACK_WINDOW_S = 0.3


@dataclass(slots=True)
class Report:
    """One receiver report block, as the estimator needs it."""

    fraction_lost: float
    highest_seq: int
    packets_lost: int
    jitter: int = 0


class BandwidthEstimator:
    """Per-viewer estimate in bit/s; feed it RTCP and what was sent, read ``estimate_bps``."""

    def __init__(self, start_bps: int, *, min_bps: int = 50_000, max_bps: int = 50_000_000):
        self.min_bps = min_bps
        self.max_bps = max_bps
        self.target_bps = float(start_bps)
        self.remb_bps: int | None = None
        self.rtt_s: float | None = None
        self.loss = 0.0
        self.received_bps: float | None = None
        self.nacks = 0
        self.plis = 0
        self.reports = 0
        self._history: deque[tuple[float, float]] = deque()  # (at, target)
        self._sent: deque[tuple[float, int]] = deque()  # (at, bytes) over the last 2 s
        self._nacked: deque[tuple[float, int]] = deque()
        self._last_report: tuple[float, Report] | None = None
        self._last_cut = float("-inf")

    # -- inputs ---------------------------------------------------------------------------

    def on_sent(self, size: int, at: float) -> None:
        """A media packet of ``size`` bytes left for this viewer."""
        self._sent.append((at, size))
        while self._sent and self._sent[0][0] < at - 2.0:
            self._sent.popleft()

    def on_remb(self, bps: int, at: float) -> None:
        self.remb_bps = bps

    def on_rtt(self, rtt_s: float) -> None:
        self.rtt_s = rtt_s

    def on_pli(self, at: float) -> None:
        self.plis += 1

    def on_nack(self, lost: int, at: float) -> None:
        """``lost`` packets reported missing: a loss signal one RTT after the loss."""
        self.nacks += lost
        self._nacked.append((at, lost))
        while self._nacked and self._nacked[0][0] < at - NACK_WINDOW_S:
            self._nacked.popleft()
        sent = self._packets_since(at - NACK_WINDOW_S)
        nacked = sum(n for _, n in self._nacked)
        if sent >= MIN_PACKETS and nacked / sent > HIGH_LOSS:
            self._cut(nacked / sent, self._sent_bps(at, NACK_WINDOW_S) * (1 - nacked / sent), at)

    def on_report(self, report: Report, at: float) -> None:
        """A receiver report for this viewer's stream."""
        self.reports += 1
        previous, self._last_report = self._last_report, (at, report)
        if previous is None:
            return
        then, old = previous
        expected = (report.highest_seq - old.highest_seq) & 0xFFFFFFFF
        lost = max(0, report.packets_lost - old.packets_lost)
        interval = at - then
        if expected < MIN_PACKETS or interval <= 0 or expected > 1_000_000:
            return
        loss = min(1.0, lost / expected)
        self.loss = loss
        sent_bps = self._sent_bps(at, interval)
        self.received_bps = sent_bps * (1 - loss)
        if loss > HIGH_LOSS:
            self._cut(loss, self.received_bps, at)
        elif loss <= LOW_LOSS:
            floor = min((t for _, t in self._history), default=self.target_bps)
            self._set(max(self.target_bps, floor * 1.08 + 1000), at)

    # -- output ---------------------------------------------------------------------------

    @property
    def estimate_bps(self) -> int:
        estimate = self.target_bps
        if self.remb_bps is not None:
            estimate = min(estimate, self.remb_bps)
        return int(max(self.min_bps, min(self.max_bps, estimate)))

    def overused(self, sending_bps: float) -> bool:
        """Whether the receiver's delay-based estimate (REMB) says we send too much."""
        return self.remb_bps is not None and self.remb_bps < 0.85 * sending_bps

    # -- internals ------------------------------------------------------------------------

    def _cut(self, loss: float, through_bps: float, at: float) -> None:
        if at - self._last_cut < 0.3 + (self.rtt_s or 0.0):
            return
        self._last_cut = at
        cut = min(self.target_bps * (1 - loss / 2), 0.85 * through_bps)
        self._set(cut, at)

    def _set(self, bps: float, at: float) -> None:
        self.target_bps = max(self.min_bps, min(self.max_bps, bps))
        self._history.append((at, self.target_bps))
        while self._history and self._history[0][0] < at - 1.0:
            self._history.popleft()

    def _packets_since(self, since: float) -> int:
        return sum(1 for t, _ in self._sent if t >= since)

    def _sent_bps(self, at: float, window: float) -> float:
        window = max(window, 0.1)
        return sum(size for t, size in self._sent if t >= at - window) * 8 / window
