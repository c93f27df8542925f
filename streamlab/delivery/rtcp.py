"""A viewer's RTCP, as delivery needs it, from an aiortc ``RTCRtpSender``.

aiortc acts on PLI/FIR and REMB only on its own encode path; on the pre-encoded packet path
we use, both do nothing. ``hook_sender`` wraps the sender's RTCP handler (private API, so
aiortc is pinned in pyproject.toml): receiver reports, REMB, NACK and PLI/FIR go to the
viewer's ``Feedback``; NACKs are answered from aiortc's history only when the guard allows
(no re-send of a packet within one RTT, re-sends capped at a share of what is sent). The
history is raised from aiortc's 128 packets (under 1 s at 2 Mbit/s) to 1024, and packets
are dropped from it once older than max(1 s, 3 RTT) (libwebrtc's rule): a NACK for an older
one asks for a keyframe instead. Without the time bound, 500 viewers kept 1,024 packets each
(a GB, mostly keyframes from viewers joining) however slow the stream.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import aiortc.rtcrtpsender as _sender_module
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from streamlab.clock import now
from streamlab.delivery.estimate import Report

HISTORY_SIZE = 1024
_sender_module.RTP_HISTORY_SIZE = HISTORY_SIZE
RETRANSMIT_SHARE = 0.3  # at most this share of the packets sent in the last second
MIN_RESEND_GAP_S = 0.05
HISTORY_MIN_S = 1.0  # keep a sent packet at least this long (and 3 RTT) for NACKs
WINDOW_CAP = 10_000


class Feedback(Protocol):
    """Where a viewer's RTCP goes."""

    def on_report(self, report: Report, at: float) -> None: ...
    def on_rtt(self, rtt_s: float) -> None: ...
    def on_remb(self, bps: int, at: float) -> None: ...
    def on_nack(self, lost: list[int], at: float) -> None: ...
    def on_keyframe_request(self, at: float) -> None: ...
    def on_rtx_lost(self, lost: int, at: float) -> None: ...


class RetransmitGuard:
    """Decides which NACKed packets are sent again."""

    def __init__(self) -> None:
        self.history: dict[int, Any] | None = None  # the sender's, set by ``hook_sender``
        self._kept: deque[tuple[float, int]] = deque(maxlen=HISTORY_SIZE)  # (at, seq)
        self._resent: dict[int, float] = {}
        # one-second windows; the caps only matter above 10,000 packets a second
        self._recent: deque[float] = deque(maxlen=WINDOW_CAP)
        self._sent: deque[float] = deque(maxlen=WINDOW_CAP)
        self.retransmitted = 0
        self.refused = 0

    def note_sent(self, at: float, seq: int | None = None, rtt_s: float | None = None) -> None:
        """A packet (RTP sequence number ``seq``) left; older ones leave the history."""
        self._sent.append(at)
        while self._sent and self._sent[0] < at - 1.0:
            self._sent.popleft()
        if seq is None or self.history is None:
            return
        self._kept.append((at, seq))
        keep_s = max(HISTORY_MIN_S, 3 * (rtt_s or 0.0))
        while self._kept and self._kept[0][0] < at - keep_s:
            _, old = self._kept.popleft()
            kept = self.history.get(old % HISTORY_SIZE)
            if kept is not None and kept.sequence_number == old:
                del self.history[old % HISTORY_SIZE]

    def recently_resent(self, seq: int, at: float, rtt_s: float | None) -> bool:
        last = self._resent.get(seq)
        return last is not None and at - last < max(rtt_s or 0.0, MIN_RESEND_GAP_S)

    def allow(self, seq: int, at: float, rtt_s: float | None) -> bool:
        while self._recent and self._recent[0] < at - 1.0:
            self._recent.popleft()
        if self.recently_resent(seq, at, rtt_s):
            self.refused += 1
            return False
        if len(self._recent) >= max(10, RETRANSMIT_SHARE * len(self._sent)):
            self.refused += 1
            return False
        self._resent[seq] = at
        if len(self._resent) > 4 * HISTORY_SIZE:
            for old in list(self._resent)[: 2 * HISTORY_SIZE]:
                del self._resent[old]
        self._recent.append(at)
        self.retransmitted += 1
        return True


def sender_rtt(sender: Any) -> float | None:
    """aiortc's smoothed RTT of ``sender`` in seconds (None before the first report)."""
    rtt = getattr(sender, "_RTCRtpSender__rtt", None)
    return float(rtt) if rtt is not None else None


def _raw_rtt(sender: Any, lsr: int, dlsr: int, at: float) -> float | None:
    """This report's own round trip (aiortc keeps only a slow moving average)."""
    sent_lsr = getattr(sender, "_RTCRtpSender__lsr", None)
    sent_at = getattr(sender, "_RTCRtpSender__lsr_time", None)
    if sent_lsr is None or sent_at is None or lsr != sent_lsr or not dlsr:
        return None
    return max(0.0, at - sent_at - dlsr / 65536)


def hook_sender(sender: Any, feedback: Feedback, guard: RetransmitGuard) -> None:
    """Route ``sender``'s incoming RTCP to ``feedback`` (see the module docstring)."""
    original = sender._handle_rtcp_packet
    history = getattr(sender, "_RTCRtpSender__rtp_history", None)
    guard.history = history if isinstance(history, dict) else None

    async def handle(packet: Any) -> None:
        at = now()
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            await original(packet)  # aiortc's smoothed RTT and getStats()
            for block in packet.reports:
                if block.ssrc == sender._ssrc:
                    rtt = _raw_rtt(sender, block.lsr, block.dlsr, at)
                    if rtt is not None:
                        feedback.on_rtt(rtt)
                    report = Report(block.fraction_lost / 256, block.highest_sequence,
                                    block.packets_lost, block.jitter)  # fmt: skip
                    feedback.on_report(report, at)
                elif block.ssrc == getattr(sender, "_rtx_ssrc", None):
                    feedback.on_rtx_lost(block.packets_lost, at)  # padding lost: a probe too big
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            feedback.on_nack(list(packet.lost), at)
            rtt = sender_rtt(sender)
            history = getattr(sender, "_RTCRtpSender__rtp_history", {})
            lost_for_good = 0
            for seq in packet.lost:
                kept = history.get(seq % HISTORY_SIZE)
                if kept is None or kept.sequence_number != seq:
                    lost_for_good += 1
                elif guard.allow(seq, at, rtt):
                    await sender._retransmit(seq)
                elif not guard.recently_resent(seq, at, rtt):
                    lost_for_good += 1
            if lost_for_good:
                feedback.on_keyframe_request(at)  # the picture cannot be repaired
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            feedback.on_keyframe_request(at)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if sender._ssrc in ssrcs:
                feedback.on_remb(int(bitrate), at)
        else:
            await original(packet)

    sender._handle_rtcp_packet = handle


def unhook_sender(sender: Any) -> None:
    """Undo ``hook_sender`` (the hook and the sender point at each other until then)."""
    sender.__dict__.pop("_handle_rtcp_packet", None)
