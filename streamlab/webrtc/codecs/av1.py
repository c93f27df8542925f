"""AV1 over RTP (AOMedia "RTP Payload Format for AV1"), one layer, no dependency descriptor.

Each payload starts with the aggregation header ``Z Y W W N - - -``: ``Z`` the first OBU
element continues a fragment, ``Y`` the last one continues in the next packet, ``W`` the
element count (1-3: the last element has no length) or 0 (every element has a LEB128
length), ``N`` the first packet of a coded video sequence. OBU elements carry no
``obu_size``; temporal delimiters, tile lists and padding are not sent. A keyframe starts a
new coded video sequence: the sequence header goes first in its first packet (cached and
re-inserted when the encoder did not repeat it) and that packet has ``N=1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import av
from aiortc.codecs.base import Decoder, Encoder
from aiortc.codecs.vpx import PACKET_MAX
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

from streamlab.webrtc.codecs.framing import decode_payloads
from streamlab.webrtc.codecs.obu import (
    PADDING,
    SEQUENCE_HEADER,
    TEMPORAL_DELIMITER,
    TILE_LIST,
    Obu,
    leb128,
    parse_element,
    parse_obus,
    read_leb128,
    temporal_unit,
)

_Z, _Y, _N = 0x80, 0x40, 0x08
_W_SHIFT = 4
NOT_SENT = frozenset({TEMPORAL_DELIMITER, TILE_LIST, PADDING})


def sequence_header_of(extradata: bytes | None) -> Obu | None:
    """The sequence header in an encoder's extradata: an ``av1C`` record (its config OBUs
    follow 4 bytes) or plain OBUs."""
    if not extradata:
        return None
    data = extradata[4:] if extradata[0] & 0x80 else extradata  # av1C: marker bit set
    for obu in parse_obus(bytes(data)):
        if obu.type == SEQUENCE_HEADER:
            return obu
    return None


def with_sequence_header(unit: bytes, cached: bytes | None) -> tuple[bytes, bytes | None]:
    """A keyframe's temporal unit with a sequence header, and the header to cache.

    A unit that has one keeps it (and it becomes the cached one); one without gets ``cached``
    (an OBU with its size field) after its temporal delimiter."""
    obus = parse_obus(unit)
    for obu in obus:
        if obu.type == SEQUENCE_HEADER:
            return unit, obu.sized
    if cached is None:
        return unit, None
    at = 1 if obus and obus[0].type == TEMPORAL_DELIMITER else 0
    parts = [obu.sized for obu in obus]
    return b"".join([*parts[:at], cached, *parts[at:]]), cached


class Av1Packetizer:
    """Splits AV1 temporal units into RTP payloads of at most ``max_payload`` bytes."""

    def __init__(self, max_payload: int = PACKET_MAX) -> None:
        self.max_payload = max_payload
        self.sequence_header: Obu | None = None

    def packetize(self, unit: bytes, keyframe: bool) -> list[bytes]:
        """The payloads of one temporal unit (low-overhead format, as encoders write it)."""
        obus = [o for o in parse_obus(unit) if o.type not in NOT_SENT]
        headers = [o for o in obus if o.type == SEQUENCE_HEADER]
        if headers:
            self.sequence_header = headers[0]
        if keyframe and self.sequence_header is not None:
            others = [o for o in obus if o.type != SEQUENCE_HEADER]
            obus = [self.sequence_header, *others]
        new_sequence = keyframe and self.sequence_header is not None
        return self._pack([o.element for o in obus], new_sequence)

    def _pack(self, elements: list[bytes], new_sequence: bool) -> list[bytes]:
        payloads: list[bytes] = []
        current: list[bytes] = []
        used = 1  # the aggregation header
        continues = False  # the current packet starts with a fragment's continuation

        def flush(fragment_follows: bool) -> None:
            nonlocal current, used, continues
            first = new_sequence and not payloads
            payloads.append(_payload(current, continues, fragment_follows, first))
            current, used, continues = [], 1, fragment_follows

        for element in elements:
            rest = element
            while rest:
                room = self.max_payload - used
                if len(leb128(len(rest))) + len(rest) <= room:
                    current.append(rest)
                    used += len(leb128(len(rest))) + len(rest)
                    break
                chunk = room - len(leb128(room))
                if chunk <= 0:
                    if not current:
                        raise ValueError(f"max_payload {self.max_payload} is too small")
                    flush(fragment_follows=False)
                    continue
                current.append(rest[:chunk])
                rest = rest[chunk:]
                flush(fragment_follows=True)
        if current:
            flush(fragment_follows=False)
        return payloads


def _payload(elements: list[bytes], z: bool, y: bool, n: bool) -> bytes:
    count = len(elements) if len(elements) <= 3 else 0
    header = (_Z if z else 0) | (_Y if y else 0) | count << _W_SHIFT | (_N if n else 0)
    parts = [bytes([header])]
    for index, element in enumerate(elements):
        if not (count and index == count - 1):
            parts.append(leb128(len(element)))
        parts.append(element)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Av1Payload:
    """One payload's aggregation header and its OBU elements."""

    continues: bool  # Z
    fragment_follows: bool  # Y
    new_sequence: bool  # N
    elements: list[bytes]


def parse_payload(payload: bytes) -> Av1Payload:
    """Split one RTP payload into its aggregation header and elements (ValueError if bad)."""
    if len(payload) < 2:
        raise ValueError("AV1 payload too short")
    header = payload[0]
    count = (header >> _W_SHIFT) & 0x03
    elements: list[bytes] = []
    pos = 1
    while pos < len(payload):
        if count and len(elements) == count - 1:
            length = len(payload) - pos
        else:
            length, pos = read_leb128(payload, pos)
        if pos + length > len(payload):
            raise ValueError("AV1 OBU element runs past the payload")
        elements.append(payload[pos : pos + length])
        pos += length
    if count and len(elements) != count:
        raise ValueError("AV1 payload has fewer elements than W says")
    parsed = Av1Payload(bool(header & _Z), bool(header & _Y), bool(header & _N), elements)
    if parsed.new_sequence and parsed.continues:
        raise ValueError("AV1 payload with N=1 continues a fragment (Z=1)")
    return parsed


@dataclass(frozen=True, slots=True)
class Av1TemporalUnit:
    """A reassembled temporal unit: its OBUs and whether it starts a coded video sequence."""

    obus: list[Obu]
    keyframe: bool

    @property
    def data(self) -> bytes:
        """The temporal unit in the low-overhead format a decoder takes."""
        return temporal_unit(self.obus)


def reassemble(payloads: list[bytes]) -> Av1TemporalUnit:
    """The temporal unit ``payloads`` (one frame's packets in sequence order) carry.

    Raises ValueError when a fragment lacks its start or end."""
    if not payloads:
        raise ValueError("no AV1 payloads")
    parsed = [parse_payload(payload) for payload in payloads]
    obus: list[Obu] = []
    pending: bytes | None = None
    for payload in parsed:
        for index, element in enumerate(payload.elements):
            if index == 0 and payload.continues:
                if pending is None:
                    raise ValueError("AV1 fragment without its start (Z=1)")
                element, pending = pending + element, None
            elif pending is not None:
                raise ValueError("AV1 fragment not continued (Y=1, then Z=0)")
            if index == len(payload.elements) - 1 and payload.fragment_follows:
                pending = element
            else:
                obu = parse_element(element)
                if obu.type not in NOT_SENT:
                    obus.append(obu)
    if pending is not None:
        raise ValueError("AV1 fragment without its end (Y=1 on the last packet)")
    return Av1TemporalUnit(obus, keyframe=parsed[0].new_sequence)


class Av1Encoder(Encoder):
    """aiortc's codec interface for AV1: packs pre-encoded ``av.Packet``s into payloads."""

    def __init__(self) -> None:
        self.packetizer = Av1Packetizer()

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Not supported: the delivery encodes once per rung and hands packets to ``pack``."""
        raise NotImplementedError("streamlab sends pre-encoded AV1 packets (pack)")

    def pack(self, packet: av.Packet) -> tuple[list[bytes], int]:
        """The packet's RTP payloads and its RTP timestamp (90 kHz)."""
        payloads = self.packetizer.packetize(bytes(packet), packet.is_keyframe)
        timestamp = convert_timebase(packet.pts or 0, packet.time_base, VIDEO_TIME_BASE)
        return payloads, timestamp


class Av1Decoder(Decoder):
    """aiortc's codec interface for AV1: reassembles a jitter-buffer frame, decodes with dav1d."""

    def __init__(self) -> None:
        self.codec: Any = av.CodecContext.create("libdav1d", "r")
        self.codec.options = {"max_frame_delay": "1"}  # a frame out for every frame in

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        """Decoded frames; an incomplete unit raises an ``av.FFmpegError`` (aiortc sends a PLI)."""
        return decode_payloads(self.codec, encoded_frame.data, encoded_frame.timestamp,
                               reassemble)  # fmt: skip
