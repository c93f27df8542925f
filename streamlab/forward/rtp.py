"""Plain RTP out of one UDP socket: a stream's encoded frames to a Janus mountpoint.

Frames are packetised with aiortc's payload formats (VP8, H.264), stamped with one SSRC and
the delivery's 90 kHz clock, and sent to the mountpoint's video port; RTCP sender reports go
to its ``rtcpport`` from the same socket, so Janus learns where to send its keyframe
requests (PLI/FIR), which come back here (``on_keyframe_request``). Analysis messages go to
the data port as one datagram each. Nothing waits: when the socket's buffer backs up, whole
frames are dropped (counted) and the next keyframe is asked for.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable
from typing import Any, cast

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
)

RTP_MASK = 0xFFFFFFFF
NTP_EPOCH_S = 2_208_988_800
MAX_BUFFERED = 256 * 1024  # bytes waiting in the socket's transport before frames are dropped
MAX_DATAGRAM = 60_000


def ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp."""
    return int((time.time() + NTP_EPOCH_S) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


class RtpOut(asyncio.DatagramProtocol):
    """One forward's socket; ``await open(host)``, ``set_ports(...)``, then ``send_frame``."""

    def __init__(self, codec: str, *, payload_type: int = 96,
                 on_keyframe_request: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.codec = codec
        self.payload_type = payload_type
        self.on_keyframe_request = on_keyframe_request
        self.ssrc = random.randint(1, RTP_MASK)
        self._sequence = random.randint(0, 0xFFFF)
        self._origin = random.randint(0, RTP_MASK)
        self._packetizer: Any = Vp8Encoder() if codec == "vp8" else H264Encoder()
        self._transport: asyncio.DatagramTransport | None = None
        self.address: str | None = None
        self.video_port: int | None = None
        self.rtcp_port: int | None = None
        self.data_port: int | None = None
        self._last_rtp: int | None = None
        self._last_sent_at = 0.0
        self.packets = 0
        self.bytes = 0
        self.frames = 0
        self.dropped_frames = 0
        self.reports = 0
        self.keyframe_requests = 0
        self.data_messages = 0
        self.needs_keyframe = True

    async def open(self, host: str, port: int = 0) -> None:
        """Resolve Janus's ``host`` (without blocking) and open the socket."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        if not infos:
            raise OSError(f"cannot resolve {host!r}")
        family, _, _, _, sockaddr = infos[0]
        self.address = str(sockaddr[0])
        local = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)
        await loop.create_datagram_endpoint(lambda: self, local_addr=local, family=family)

    def set_ports(self, video: int, rtcp: int | None, data: int | None) -> None:
        """The mountpoint's ports (a new mountpoint: a new keyframe is needed first)."""
        self.video_port, self.rtcp_port, self.data_port = video, rtcp, data
        self.needs_keyframe = True

    def clear_ports(self) -> None:
        """No mountpoint now: send nothing."""
        self.video_port = self.rtcp_port = self.data_port = None

    def rtp_timestamp(self, ticks: int) -> int:
        """The RTP timestamp of 90 kHz ``ticks`` on this forward's wire."""
        return (self._origin + ticks) & RTP_MASK

    @property
    def ready(self) -> bool:
        return self._transport is not None and self.video_port is not None

    # -- sending --------------------------------------------------------------------------

    def send_frame(self, packets: list[av.Packet], keyframe: bool) -> bool:
        """Packetise and send one encoded frame; False when it was dropped."""
        transport = self._transport
        if transport is None or self.video_port is None or self.address is None:
            return False
        if self.needs_keyframe and not keyframe:
            self.dropped_frames += 1
            return False
        if _buffered(transport) > MAX_BUFFERED:
            self.dropped_frames += 1
            self.needs_keyframe = True
            return False
        self.needs_keyframe = False
        ticks = int(packets[0].pts or 0)
        timestamp = (self._origin + ticks) & RTP_MASK
        payloads: list[bytes] = []
        for packet in packets:
            payloads.extend(self._packetizer.pack(packet)[0])
        target = (self.address, self.video_port)
        for index, payload in enumerate(payloads):
            rtp = RtpPacket(payload_type=self.payload_type, marker=int(index == len(payloads) - 1),
                            sequence_number=self._sequence, timestamp=timestamp, ssrc=self.ssrc,
                            payload=payload)  # fmt: skip
            self._sequence = (self._sequence + 1) & 0xFFFF
            data = rtp.serialize()
            transport.sendto(data, target)
            self.packets += 1
            self.bytes += len(payload)
        self.frames += 1
        self._last_rtp, self._last_sent_at = timestamp, time.monotonic()
        return True

    def send_report(self) -> None:
        """An RTCP sender report to the mountpoint's ``rtcpport`` (Janus latches onto it)."""
        transport = self._transport
        if transport is None or self.rtcp_port is None or self.address is None:
            return
        rtp_now = self._origin
        if self._last_rtp is not None:
            elapsed = int((time.monotonic() - self._last_sent_at) * 90_000)
            rtp_now = (self._last_rtp + elapsed) & RTP_MASK
        info = RtcpSenderInfo(ntp_timestamp=ntp_now(), rtp_timestamp=rtp_now,
                              packet_count=self.packets & RTP_MASK,
                              octet_count=self.bytes & RTP_MASK)  # fmt: skip
        transport.sendto(bytes(RtcpSrPacket(ssrc=self.ssrc, sender_info=info)),
                         (self.address, self.rtcp_port))  # fmt: skip
        self.reports += 1

    def send_data(self, text: str) -> bool:
        """One analysis message to the data port (False when there is none, or too big)."""
        transport = self._transport
        if transport is None or self.data_port is None or self.address is None:
            return False
        data = text.encode()
        if len(data) > MAX_DATAGRAM or _buffered(transport) > MAX_BUFFERED:
            return False
        transport.sendto(data, (self.address, self.data_port))
        self.data_messages += 1
        return True

    # -- receiving ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 8 or not 192 <= data[1] <= 223:
            return  # not RTCP
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            return
        for packet in packets:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self.keyframe_requests += 1
                if self.on_keyframe_request is not None:
                    self.on_keyframe_request()

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable while Janus restarts: the forward's health check notices

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def _buffered(transport: asyncio.DatagramTransport) -> int:
    """Bytes the transport holds back (the socket's buffer was full)."""
    return int(getattr(transport, "get_write_buffer_size", lambda: 0)())
