"""H.265 over RTP (RFC 7798), one layer, no DONL (``sprop-max-don-diff`` = 0).

An access unit (Annex-B, as an RTSP camera's demuxer gives it) is split into NAL units;
access unit delimiters are not sent. A NAL unit that fits a packet goes alone (a single NAL
unit packet: the NAL unit itself) or, with its small neighbours, in an aggregation packet
(type 48: each unit after a 16-bit size; the payload header's F is the OR of theirs,
LayerId and TID the lowest); one that does not fit is split into fragmentation units (type
49: the payload header, an FU header ``S E FuType``, then a share of the NAL unit's payload).
The depacketiser turns a frame's payloads back into an Annex-B access unit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import av
from aiortc.codecs.base import Decoder, Encoder
from aiortc.codecs.vpx import PACKET_MAX
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

from streamlab.webrtc.codecs.framing import decode_payloads

AGGREGATION = 48
FRAGMENT = 49
ACCESS_UNIT_DELIMITER = 35
IRAP = range(16, 24)  # BLA, IDR, CRA and reserved IRAP types: decoding can start here
START_CODE = b"\x00\x00\x00\x01"
_S, _E = 0x80, 0x40
_SIZE = struct.Struct("!H")


def nal_type(nal: bytes) -> int:
    """The type field of a NAL unit (or payload) header."""
    return (nal[0] >> 1) & 0x3F


def split_annexb(unit: bytes) -> list[bytes]:
    """The NAL units of an Annex-B access unit (start codes of 3 or 4 bytes), without them."""
    nals = []
    starts = []
    index = unit.find(b"\x00\x00\x01")
    while index != -1:
        starts.append(index)
        index = unit.find(b"\x00\x00\x01", index + 3)
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(unit)
        # trailing zeros: the next start code's leading zero, or trailing_zero_8bits (a NAL
        # unit itself ends in its stop bit, never in a zero byte)
        nal = unit[start + 3 : end].rstrip(b"\x00")
        if len(nal) >= 2:
            nals.append(nal)
    return nals


def is_keyframe(nals: list[bytes]) -> bool:
    """Whether the access unit holds an IRAP picture."""
    return any(nal_type(nal) in IRAP for nal in nals)


def _aggregate_header(nals: list[bytes]) -> bytes:
    forbidden = any(nal[0] & 0x80 for nal in nals)
    layer = min(((nal[0] & 0x01) << 5) | (nal[1] >> 3) for nal in nals)
    tid = min(nal[1] & 0x07 for nal in nals)
    return bytes([(0x80 if forbidden else 0) | AGGREGATION << 1 | layer >> 5,
                  (layer & 0x1F) << 3 | tid])  # fmt: skip


class H265Packetizer:
    """Splits H.265 access units into RTP payloads of at most ``max_payload`` bytes."""

    def __init__(self, max_payload: int = PACKET_MAX) -> None:
        if max_payload < 8:
            raise ValueError(f"max_payload {max_payload} leaves no room for data")
        self.max_payload = max_payload

    def packetize(self, unit: bytes) -> list[bytes]:
        """The payloads of one access unit, in order."""
        nals = [n for n in split_annexb(unit) if nal_type(n) != ACCESS_UNIT_DELIMITER]
        payloads: list[bytes] = []
        group: list[bytes] = []
        for nal in nals:
            if len(nal) > self.max_payload:
                payloads += self._flush(group)
                group = []
                payloads += self._fragments(nal)
                continue
            if group and self._aggregate_size([*group, nal]) > self.max_payload:
                payloads += self._flush(group)
                group = []
            group.append(nal)
        return payloads + self._flush(group)

    @staticmethod
    def _aggregate_size(nals: list[bytes]) -> int:
        return 2 + sum(_SIZE.size + len(nal) for nal in nals)

    @staticmethod
    def _flush(group: list[bytes]) -> list[bytes]:
        if not group:
            return []
        if len(group) == 1:
            return [group[0]]
        body = b"".join(_SIZE.pack(len(nal)) + nal for nal in group)
        return [_aggregate_header(group) + body]

    def _fragments(self, nal: bytes) -> list[bytes]:
        header = bytes([(nal[0] & 0x81) | FRAGMENT << 1, nal[1]])
        kind = nal_type(nal)
        data = nal[2:]
        room = self.max_payload - 3
        out = []
        for pos in range(0, len(data), room):
            flags = (_S if pos == 0 else 0) | (_E if pos + room >= len(data) else 0)
            out.append(header + bytes([flags | kind]) + data[pos : pos + room])
        return out


@dataclass(frozen=True, slots=True)
class H265Unit:
    """A reassembled access unit (Annex-B) and whether it starts a picture group."""

    data: bytes
    keyframe: bool


def depacketize(payloads: list[bytes]) -> list[bytes]:
    """The NAL units carried by one frame's payloads, in order.

    Raises ValueError for a truncated payload or a fragmented unit missing its start or end."""
    nals: list[bytes] = []
    fragment: bytearray | None = None
    for payload in payloads:
        if len(payload) < 3:
            raise ValueError("H.265 payload shorter than its header")
        kind = nal_type(payload)
        if kind == FRAGMENT:
            fu = payload[2]
            if fu & _S:
                if fragment is not None:
                    raise ValueError("H.265 fragment started before the last one ended")
                header = bytes([(payload[0] & 0x81) | (fu & 0x3F) << 1, payload[1]])
                fragment = bytearray(header)
            elif fragment is None:
                raise ValueError("H.265 fragment without its start (S=0)")
            fragment += payload[3:]
            if fu & _E:
                nals.append(bytes(fragment))
                fragment = None
            continue
        if fragment is not None:
            raise ValueError("H.265 fragment without its end (E=0)")
        if kind == AGGREGATION:
            pos = 2
            while pos < len(payload):
                if pos + _SIZE.size > len(payload):
                    raise ValueError("H.265 aggregation packet is truncated")
                (size,) = _SIZE.unpack_from(payload, pos)
                pos += _SIZE.size
                if size < 2 or pos + size > len(payload):
                    raise ValueError("H.265 aggregation unit is truncated")
                nals.append(payload[pos : pos + size])
                pos += size
            continue
        nals.append(payload)
    if fragment is not None:
        raise ValueError("H.265 fragment without its end (E=0)")
    return nals


def reassemble(payloads: list[bytes]) -> H265Unit:
    """The access unit carried by ``payloads`` (one frame's packets in sequence order)."""
    nals = depacketize(payloads)
    if not nals:
        raise ValueError("no H.265 NAL units")
    return H265Unit(b"".join(START_CODE + nal for nal in nals), is_keyframe(nals))


class H265Encoder(Encoder):
    """aiortc's codec interface for H.265: packs pre-encoded access units into payloads."""

    def __init__(self) -> None:
        self.packetizer = H265Packetizer()

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Not supported: H.265 is only passed through (the camera's own access units)."""
        raise NotImplementedError("streamlab sends pre-encoded H.265 access units (pack)")

    def pack(self, packet: av.Packet) -> tuple[list[bytes], int]:
        """The packet's RTP payloads and its RTP timestamp (90 kHz)."""
        payloads = self.packetizer.packetize(bytes(packet))
        timestamp = convert_timebase(packet.pts or 0, packet.time_base, VIDEO_TIME_BASE)
        return payloads, timestamp


class H265Decoder(Decoder):
    """aiortc's codec interface for H.265: reassembles a jitter-buffer frame and decodes it."""

    def __init__(self) -> None:
        self.codec: Any = av.CodecContext.create("hevc", "r")

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        """Decoded frames; an incomplete frame raises an ``av.FFmpegError`` (aiortc sends a PLI)."""
        return decode_payloads(self.codec, encoded_frame.data, encoded_frame.timestamp,
                               reassemble)  # fmt: skip
