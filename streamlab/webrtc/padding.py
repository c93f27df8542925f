"""Padding on a viewer's retransmission (RTX) stream, for probing its link.

libwebrtc pads the way this module does: with *payload padding*, RTX copies of media
packets the viewer already has (full-size packets, so the probe is not mostly headers),
and with plain padding packets (an RTP header and up to 255 bytes of RTP padding) when
there is none to copy. Each leaves with a fresh abs-send-time, so a receiver that detects
probes from packet spacing (Chromium) sees the probe's rate. Receivers count padding toward
the incoming rate their bandwidth estimators see and drop it before decoding (a copy is a
duplicate), so the picture is untouched. Needs RTX negotiated; uses aiortc's sender
internals (aiortc is pinned).
"""

from __future__ import annotations

import copy
from typing import Any

from aiortc import clock
from aiortc.rtp import RtpPacket, wrap_rtx
from aiortc.utils import uint16_add

MAX_PADDING = 255
PACKET_OVERHEAD = 12 + 16 + 10 + 28  # RTP header + extensions + SRTP tag + UDP/IPv4
MIN_COPY = 400  # media packets smaller than this are not worth copying


def can_pad(sender: Any) -> bool:
    """Whether ``sender`` has an RTX stream to carry padding (the peer offered RTX)."""
    return getattr(sender, "_RTCRtpSender__rtx_payload_type", None) is not None


def _latest_media(sender: Any) -> RtpPacket | None:
    """The most recent large media packet the sender still keeps (None: none)."""
    history = getattr(sender, "_RTCRtpSender__rtp_history", None) or {}
    best: RtpPacket | None = None
    for packet in list(history.values())[-64:]:
        if len(packet.payload) >= MIN_COPY and (
            best is None or ((packet.sequence_number - best.sequence_number) & 0xFFFF) < 0x8000
        ):
            best = packet
    return best


async def send_padding(sender: Any, packets: int) -> int:
    """Send ``packets`` padding packets; returns the bytes put on the wire (estimated,
    headers included). Nothing is sent without RTX."""
    payload_type = getattr(sender, "_RTCRtpSender__rtx_payload_type", None)
    transport = getattr(sender, "transport", None)
    if payload_type is None or transport is None or packets <= 0:
        return 0
    extensions = sender._RTCRtpSender__rtp_header_extensions_map
    sent = 0
    for _ in range(packets):
        sequence = sender._RTCRtpSender__rtx_sequence_number
        sender._RTCRtpSender__rtx_sequence_number = uint16_add(sequence, 1)
        media = _latest_media(sender)
        if media is not None:
            packet = wrap_rtx(media, payload_type, sequence, sender._rtx_ssrc)
            packet.extensions = copy.copy(media.extensions)
        else:
            timestamp = getattr(sender, "_RTCRtpSender__rtp_timestamp", 0)
            packet = RtpPacket(payload_type=payload_type, sequence_number=sequence,
                               timestamp=timestamp, ssrc=sender._rtx_ssrc)  # fmt: skip
            packet.padding_size = MAX_PADDING
            packet.extensions.mid = sender._RTCRtpSender__mid
        packet.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
        data = packet.serialize(extensions)
        await transport._send_rtp(data)
        sent += len(data) + PACKET_OVERHEAD - 12
    return sent
