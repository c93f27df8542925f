"""A viewer's available bandwidth, from its own RTCP feedback.

Inputs (all from the viewer, never from the emulated link): REMB (the receiver's
delay-based estimate), receiver reports (fraction lost, cumulative loss, highest sequence
number, jitter; RTT from the sender report they answer) and NACKs (a fast loss signal).

Rules, after libwebrtc's loss-based controller (``send_side_bandwidth_estimation.cc``):
loss ≤ 2 %: grow 8 % over the lowest target of the last second; 2-10 %: hold; > 10 %: cut
to what actually got through (0.85 of the received rate), at most once per
max(1 s, 300 ms + 2 RTT) (the link's queue keeps reporting older losses that long);
no verdict on fewer than 20 packets; growth stops at 1.5 x the sent rate + 10k (only what
is sent tests the link; probes go beyond). NACKs (each
missing packet once) give the same loss verdict within 300 ms. A REMB
falling by more than 3 % means the receiver saw its queue grow: step down 15 % (or to the
REMB, if higher; not within 3 s of a loss cut: that REMB reports the same congestion).
Probes of the link (``probe.py``) set the estimate to what the link carried.
With transport-cc feedback (``on_delivery``) the queuing delay it measures takes the place
of a falling REMB: a queue over ``QUEUE_OVERUSE_S`` that is still growing
``QUEUE_HOLD_S`` later (a keyframe's queue drains by then) cuts to 0.85 of the rate the
link delivered, libwebrtc's delay-based reaction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("streamlab.delivery")

MIN_PACKETS = 20
LOW_LOSS = 0.02
HIGH_LOSS = 0.10
NACK_WINDOW_S = 0.3
WINDOW_CAP = 20_000  # entries per window: 2 s at 10,000 packets a second
CUT_GAP_S = 1.0
REMB_DROP = 0.97  # a REMB this much below the previous one signals overuse
GROWTH_CAP = 1.5  # loss-free growth reaches at most this multiple of what is sent (+10k):
# only what is sent tests the link; probes (``apply_probe``) raise it beyond
# A REMB that falls this soon after a loss cut answers the same congestion, measured on the
# little that came through while the queue drained: it does not cut again.
REMB_AFTER_CUT_S = 3.0
QUEUE_OVERUSE_S = 0.08
QUEUE_HOLD_S = 0.2


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
        # time windows (1-2 s), capped as well: the oldest entries go first
        self._history: deque[tuple[float, float]] = deque(maxlen=WINDOW_CAP)  # (at, target)
        self._sent: deque[tuple[float, int]] = deque(maxlen=WINDOW_CAP)  # (at, bytes), 2 s
        self._nacked: deque[tuple[float, int]] = deque(maxlen=WINDOW_CAP)  # (at, seq)
        self._nacked_seqs: dict[int, float] = {}
        self._last_report: tuple[float, Report] | None = None
        self._last_cut = float("-inf")
        self._highest_seq: int | None = None
        self._cut_seq: int | None = None
        self._remb_at = float("-inf")
        self._remb_dropped_at = float("-inf")
        self.delivered_bps: float | None = None
        self.probed = False
        self.queue_delay_s: float | None = None
        self._queue_since: tuple[float, float] | None = None  # (at, delay) it went over

    # -- inputs ---------------------------------------------------------------------------

    def on_sent(self, size: int, at: float, seq: int | None = None) -> None:
        """A media packet of ``size`` bytes (RTP sequence number ``seq``) left for this viewer."""
        if seq is not None:
            self._highest_seq = seq
        self._sent.append((at, size))
        while self._sent and self._sent[0][0] < at - 2.0:
            self._sent.popleft()

    def on_remb(self, bps: int, at: float, *, delay_signal: bool = True) -> None:
        """A REMB; ``delay_signal=False`` records it only (transport-cc feedback measures the
        queue itself, and an aiortc receiver sends REMB beside it)."""
        previous = self.remb_bps
        self.remb_bps = bps
        self._remb_at = at
        if delay_signal and previous is not None and bps < REMB_DROP * previous:
            self._remb_dropped_at = at
            if at - self._last_cut >= REMB_AFTER_CUT_S:
                self._overuse(bps, at)

    def on_delivery(self, feedback: Any, at: float, *, probing: bool = False) -> None:
        """Transport-cc feedback came (``feedback``: a ``TransportFeedback``): watch the
        queuing delay it measures (not while a probe fills the queue on purpose)."""
        self.delivered_bps = feedback.delivered_bps
        queue = self.queue_delay_s = feedback.queue_delay_s
        if probing or queue is None or queue < QUEUE_OVERUSE_S:
            self._queue_since = None
            return
        if self._queue_since is None:
            self._queue_since = (at, queue)
            return
        since, first = self._queue_since
        if at - since < QUEUE_HOLD_S:
            return
        self._queue_since = None
        if queue < first or self.delivered_bps is None:
            return  # draining: a keyframe's burst, not a rate the link cannot carry
        self._remb_dropped_at = at
        if at - self._last_cut < max(CUT_GAP_S, 0.3 + 2 * (self.rtt_s or 0.0)):
            return
        self._last_cut = at
        self._cut_seq = self._highest_seq
        log.debug("estimate_delay_cut", queue_ms=round(queue * 1000), old_bps=int(self.target_bps),
                  delivered_bps=int(self.delivered_bps))  # fmt: skip
        self._set(min(self.target_bps, 0.85 * self.delivered_bps), at)

    def on_rtt(self, rtt_s: float) -> None:
        self.rtt_s = rtt_s

    def on_pli(self, at: float) -> None:
        self.plis += 1

    def on_nack(self, lost: list[int], at: float) -> None:
        """Sequence numbers reported missing: a loss signal one RTT after the loss.

        Receivers repeat their whole missing list, so each number counts once per window."""
        self.nacks += len(lost)
        if self._cut_seq is not None:  # losses from before the last cut are already counted
            cut = self._cut_seq
            lost = [s for s in lost if 0 < ((s - cut) & 0xFFFF) < 0x8000]
        for seq in lost:
            first = self._nacked_seqs.get(seq)
            if first is None or at - first > 10.0:
                self._nacked_seqs[seq] = at
                self._nacked.append((at, seq))
        while self._nacked and self._nacked[0][0] < at - NACK_WINDOW_S:
            self._nacked.popleft()
        if len(self._nacked_seqs) > 4096:  # forget the oldest half (seqs wrap at 65536)
            for seq in list(self._nacked_seqs)[:2048]:
                del self._nacked_seqs[seq]
        if len(self._nacked) < 2:
            return
        seqs = sorted(seq for _, seq in self._nacked)
        span = (seqs[-1] - seqs[0]) & 0xFFFF
        expected = max(span + 1, MIN_PACKETS)
        if span > 30_000:
            return  # wrapped around: no verdict
        loss = min(1.0, len(seqs) / expected)
        if loss > HIGH_LOSS:  # the share missing of the span the NACKs cover, pause-proof
            self._cut(loss, self._sent_bps(at, 1.0) * (1 - loss), at)

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
        if then < self._last_cut:
            return  # this interval began before the last cut: its loss is already counted
        loss = min(1.0, lost / expected)
        self.loss = loss
        sent_bps = self._sent_bps(at, interval)
        self.received_bps = sent_bps * (1 - loss)
        if loss > HIGH_LOSS:
            self._cut(loss, self.received_bps, at)
        elif loss <= LOW_LOSS:
            floor = min((t for _, t in self._history), default=self.target_bps)
            grown = max(self.target_bps, floor * 1.08 + 1000)
            self._set(min(grown, max(self.target_bps, GROWTH_CAP * sent_bps + 10_000)), at)

    # -- output ---------------------------------------------------------------------------

    @property
    def estimate_bps(self) -> int:
        return int(max(self.min_bps, min(self.max_bps, self.target_bps)))

    @property
    def last_cut_at(self) -> float:
        """When loss or a falling REMB last cut the estimate (-inf: never)."""
        return self._last_cut

    @property
    def known(self) -> bool:
        """Whether anything measured the link yet (two receiver reports, a REMB or a
        probe's verdict); before, the estimate is only the start value."""
        return self.reports > 1 or self.remb_bps is not None or self.probed

    def apply_probe(self, bps: float, at: float) -> None:
        """A probe's verdict: the link carried ``bps`` (or, after overuse, about that)."""
        self.probed = True
        self._set(bps, at)
        self._history.clear()  # growth starts from the probed rate, not an older minimum
        self._history.append((at, self.target_bps))

    def loss_seen(self, at: float, within_s: float = 1.0) -> bool:
        """Whether loss cut the estimate within the last ``within_s`` seconds."""
        return at - self._last_cut < within_s

    def overused(self, at: float, within_s: float = 1.5) -> bool:
        """Whether the receiver's delay-based estimate (REMB) fell lately: its rate control
        only decreases when it sees queues grow (to 0.85 x its incoming rate); otherwise
        it follows the incoming rate up."""
        return at - self._remb_dropped_at < within_s

    # -- internals ------------------------------------------------------------------------

    def _overuse(self, remb_bps: float, at: float) -> None:
        """The receiver's delay-based estimate fell: its queue grew. Step down by 15 %, or to
        the REMB if that is higher: a REMB is 0.85 x what the receiver got, which is the
        rung's rate when the rung, not the link, limits what is sent, so following it down
        would spiral below the link (loss cuts further if the link is really slower)."""
        if at - self._last_cut < max(CUT_GAP_S, 0.3 + 2 * (self.rtt_s or 0.0)):
            return
        self._last_cut = at
        self._cut_seq = self._highest_seq
        self._set(max(remb_bps, 0.85 * self.target_bps), at)

    def _cut(self, loss: float, through_bps: float, at: float) -> None:
        if at - self._last_cut < max(CUT_GAP_S, 0.3 + 2 * (self.rtt_s or 0.0)):
            return  # what the link dropped before the last cut is still being reported
        self._last_cut = at
        self._cut_seq = self._highest_seq
        cut = min(self.target_bps * (1 - loss / 2), 0.85 * through_bps)
        log.debug("estimate_cut", loss=round(loss, 3), through_bps=int(through_bps),
                  old_bps=int(self.target_bps), new_bps=int(cut))  # fmt: skip
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
