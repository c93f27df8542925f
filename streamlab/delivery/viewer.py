"""One viewer of a stream: its codec, its rung, its estimate, its link, its feedback."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamlab.clock import now
from streamlab.delivery.estimate import BandwidthEstimator, Report
from streamlab.delivery.network import EmulatedLink, NetworkSpec
from streamlab.delivery.probe import Prober
from streamlab.delivery.rtcp import RetransmitGuard
from streamlab.delivery.transport_feedback import TransportFeedback
from streamlab.strategies.codec import CodecStrategy
from streamlab.strategies.quality import Level, QualityStrategy
from streamlab.webrtc.track import ViewerTrack
from streamlab.webrtc.twcc import Arrival, sequence_of

WIRE_OVERHEAD = 10 + 8 + 20  # SRTP tag + UDP + IPv4, on top of the RTP packet


@dataclass(eq=False)
class Viewer:
    """A connected (or connecting) viewer; the delivery moves it between rungs."""

    id: str
    track: ViewerTrack
    codec: CodecStrategy
    offered: frozenset[str]
    strategy: QualityStrategy
    estimator: BandwidthEstimator
    guard: RetransmitGuard = field(default_factory=RetransmitGuard)
    channel: Any = None
    connected: bool = False
    connected_at: float | None = None
    created_at: float = field(default_factory=now)
    rung: int | None = None
    pending: int | None = None
    bridging: bool = False
    """A passthrough viewer on the transcoded top rung until the camera's next keyframe."""
    hold_until: float = 0.0
    last_ticks: int = -1
    network_override: NetworkSpec | None = None
    quality_override: str | None = None
    playout_override: str | None = None
    playout: Any = None
    """The sender's playout-delay hint (``webrtc.playout.PlayoutHint``); None when the
    viewer did not offer the extension."""
    link: EmulatedLink | None = None
    quality_changes: int = 0
    keyframe_requests: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    on_keyframe: Callable[[Viewer], None] | None = None
    prober: Prober | None = None
    """Probes this viewer's link (None: its peer cannot carry padding, or no probing)."""
    probe_task: Any = None
    media_ssrc: int | None = None
    wire_bytes: int = 0
    """Every byte put on the wire for this viewer (media, retransmissions, padding)."""
    transport_cc: int | None = None
    """The transport-wide sequence number extension's id (None: not negotiated)."""
    feedback: TransportFeedback | None = None
    """What the viewer's transport-cc feedback says of its link (None: no transport-cc)."""
    _sent: deque[tuple[float, int]] = field(default_factory=deque)

    # -- Feedback (RTCP from this viewer) -------------------------------------------------

    def on_report(self, report: Report, at: float) -> None:
        self.estimator.on_report(report, at)

    def on_rtt(self, rtt_s: float) -> None:
        self.estimator.on_rtt(rtt_s)

    def on_remb(self, bps: int, at: float) -> None:
        self.estimator.on_remb(bps, at, delay_signal=self.feedback is None)
        if self.prober is not None and self.feedback is None:
            self.prober.on_remb(bps, at)

    def on_nack(self, lost: list[int], at: float) -> None:
        self.estimator.on_nack(lost, at)

    def on_rtx_lost(self, lost: int, at: float) -> None:
        """Cumulative packets lost on the RTX stream (retransmissions and probe padding)."""
        if self.prober is not None:
            self.prober.on_rtx_lost(lost, at)

    def on_transport_feedback(self, arrivals: list[Arrival]) -> None:
        """A transport-cc feedback packet: what arrived, and when."""
        feedback = self.feedback
        if feedback is None:
            return
        at = now()
        feedback.on_feedback(arrivals, at)
        probe = self.prober.current if self.prober is not None else None
        probing = self.prober is not None and self.prober.filling(at)
        self.estimator.on_delivery(feedback, at, probing=probing)
        if (
            probe is not None
            and not probe.reported
            and at >= probe.ends
            and feedback.probe_reported(probe.id)
        ):
            probe.measured_bps = feedback.probe_rate(probe.id)
            probe.reported = True

    def on_keyframe_request(self, at: float) -> None:
        self.keyframe_requests += 1
        self.estimator.on_pli(at)
        if self.connected and self.on_keyframe is not None:
            self.on_keyframe(self)

    # -- what was sent --------------------------------------------------------------------

    def on_wire(self, data: bytes) -> None:
        """Every packet this viewer's peer puts on the wire (before any emulated link)."""
        at = now()
        if len(data) > 1 and 192 <= data[1] <= 223:
            return  # RTCP
        self.wire_bytes += len(data)
        seq = int.from_bytes(data[2:4], "big") if len(data) >= 12 else None
        ssrc = int.from_bytes(data[8:12], "big") if seq is not None else None
        if self.media_ssrc is not None and ssrc != self.media_ssrc:
            seq = None  # RTX (retransmissions, padding): its own sequence numbers
        self.estimator.on_sent(len(data), at, seq)
        self.guard.note_sent(at, seq, self.estimator.rtt_s)
        if self.feedback is not None and self.transport_cc is not None:
            transport_seq = sequence_of(data, self.transport_cc)
            if transport_seq is not None:
                probe = self.prober.sending(at) if self.prober is not None else None
                self.feedback.on_sent(transport_seq, len(data) + WIRE_OVERHEAD, at, probe)

    def sent_frame(self, size: int) -> None:
        at = now()
        self.frames_sent += 1
        self.bytes_sent += size
        self._sent.append((at, size))
        while self._sent and self._sent[0][0] < at - 2.0:
            self._sent.popleft()

    @property
    def kbps(self) -> float:
        """Media kbit/s handed to this viewer over the last two seconds."""
        if not self._sent:
            return 0.0
        return round(sum(s for _, s in self._sent) * 8 / 2.0 / 1000, 1)

    def info(self, ladder: tuple[Level, ...] | None, network: NetworkSpec) -> dict[str, Any]:
        rung = ladder[self.rung] if ladder is not None and self.rung is not None else None
        estimator = self.estimator
        network = self.network_override if self.network_override is not None else network
        return {
            "id": self.id,
            "codec": self.codec.name,
            "rung": rung.name if rung else None,
            "bridging": self.bridging,
            "width": rung.width if rung else None,
            "height": rung.height if rung else None,
            "fps": rung.fps if rung else None,
            "target_bps": rung.bitrate if rung else None,
            "quality": self.strategy.name,
            "estimate_bps": estimator.estimate_bps if estimator.reports or estimator.known
            else None,
            "remb_bps": estimator.remb_bps,
            "loss": round(estimator.loss, 4),
            "rtt_ms": None if estimator.rtt_s is None else round(estimator.rtt_s * 1000, 1),
            "network": str(network),
            "playout_delay": _playout(self.playout),
            "link": self.link.stats.to_dict() if self.link is not None else None,
            "connected": self.connected,
            "frames_sent": self.frames_sent,
            "bytes_sent": self.bytes_sent,
            "kbps": self.kbps,
            "dropped": self.track.dropped,
            "keyframe_requests": self.keyframe_requests,
            "nacks": estimator.nacks,
            "retransmitted": self.guard.retransmitted,
            "quality_changes": self.quality_changes,
            "transport_cc": self.feedback is not None,
            "feedback_reports": self.feedback.reports if self.feedback is not None else None,
            "delivered_bps": None if estimator.delivered_bps is None
            else int(estimator.delivered_bps),
            "queue_delay_ms": None if estimator.queue_delay_s is None
            else round(estimator.queue_delay_s * 1000, 1),
            "probing_bps": _probing(self.prober),
            "probes": [r.to_dict() for r in self.prober.results][-5:] if self.prober else [],
        }


def _probing(prober: Prober | None) -> int | None:
    """The rate a running probe sends at (None: no probe)."""
    if prober is None or prober.current is None:
        return None
    return int(prober.current.rate_bps)


def _playout(hint: Any) -> str | None:
    """What the viewer is told: a range, ``browser``, or None when it cannot be told."""
    if hint is None:
        return None
    return "browser" if hint.delay is None else str(hint.delay)
