"""VP9 over RTP (RFC 9628), non-flexible mode, one spatial and one temporal layer.

Every packet carries ``I`` with a 15-bit picture ID (one per frame), ``B``/``E`` on the first
and last packet of a frame and ``P=0`` only on keyframes; a keyframe's first packet also
carries a scalability structure with the frame size (``V=1``, ``N_S=0``, ``Y=1``, ``G=0``),
the shape Chromium and Safari decode. The depacketiser reassembles the frames again.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Any

import av
from aiortc.codecs.base import Decoder, Encoder
from aiortc.codecs.vpx import PACKET_MAX
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

from streamlab.webrtc.codecs.framing import decode_payloads

PICTURE_ID_MOD = 1 << 15

_I, _P, _L, _F, _B, _E, _V, _Z = (0x80 >> bit for bit in range(8))
_SS_Y = 0x10  # N_S=0 (one spatial layer), Y=1 (its size follows), G=0 (no group)
_SS_G = 0x08
_SYNC_CODE = b"\x49\x83\x42"


@dataclass(frozen=True, slots=True)
class Vp9Header:
    """What a VP9 frame's uncompressed header says about packetising it."""

    keyframe: bool
    size: tuple[int, int] | None  # (width, height), known on keyframes


class _Bits:
    """Reads big-endian bit fields."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("VP9 frame header is truncated")
            value = value << 1 | (self.data[byte] >> (7 - (self.pos & 7))) & 1
            self.pos += 1
        return value


def parse_header(frame: bytes) -> Vp9Header:
    """Read whether ``frame`` (a VP9 frame or superframe) is a keyframe, and its size if so.

    Only the first frame of a superframe is read: it is the one a decoder starts with.
    """
    bits = _Bits(frame)
    if bits.read(2) != 2:
        raise ValueError("not a VP9 frame (frame marker)")
    profile = bits.read(1) | bits.read(1) << 1
    if profile == 3:
        bits.read(1)  # reserved
    if bits.read(1):  # show_existing_frame: shows a decoded frame, references it
        return Vp9Header(keyframe=False, size=None)
    if bits.read(1):  # frame_type 1: inter frame
        return Vp9Header(keyframe=False, size=None)
    bits.read(2)  # show_frame, error_resilient_mode
    if bytes(bits.read(8) for _ in range(3)) != _SYNC_CODE:
        raise ValueError("VP9 keyframe without its sync code")
    if profile >= 2:
        bits.read(1)  # ten_or_twelve_bit
    if bits.read(3) != 7:  # color_space other than sRGB
        bits.read(1)  # color_range
        if profile in (1, 3):
            bits.read(3)  # subsampling_x, subsampling_y, reserved
    elif profile in (1, 3):
        bits.read(1)  # reserved
    width = bits.read(16) + 1
    height = bits.read(16) + 1
    return Vp9Header(keyframe=True, size=(width, height))


class Vp9Packetizer:
    """Splits VP9 frames into RTP payloads of at most ``max_payload`` bytes."""

    def __init__(self, picture_id: int | None = None, max_payload: int = PACKET_MAX) -> None:
        self.picture_id = (
            random.randrange(PICTURE_ID_MOD) if picture_id is None else picture_id % PICTURE_ID_MOD
        )
        self.max_payload = max_payload

    def packetize(self, frame: bytes) -> list[bytes]:
        """The payloads of one frame, in order; the picture ID then moves on by one."""
        if not frame:
            return []
        header = parse_header(frame)
        first = _I | _B | (0 if header.keyframe else _P)
        picture = struct.pack("!H", 0x8000 | self.picture_id)
        ss = b""
        if header.keyframe and header.size is not None:
            first |= _V
            ss = struct.pack("!BHH", _SS_Y, *header.size)
        payloads = []
        pos = 0
        while pos < len(frame):
            descriptor_size = 1 + len(picture) + (len(ss) if pos == 0 else 0)
            room = self.max_payload - descriptor_size
            if room <= 0:
                raise ValueError(f"max_payload {self.max_payload} leaves no room for data")
            chunk = frame[pos : pos + room]
            flags = first if pos == 0 else first & ~(_B | _V)
            pos += len(chunk)
            if pos == len(frame):
                flags |= _E
            payloads.append(bytes([flags]) + picture + (ss if flags & _V else b"") + chunk)
        self.picture_id = (self.picture_id + 1) % PICTURE_ID_MOD
        return payloads


@dataclass(frozen=True, slots=True)
class Vp9Descriptor:
    """One payload's descriptor (RFC 9628 section 4.2), as far as one layer needs."""

    picture_id: int | None
    inter_predicted: bool  # P
    start: bool  # B
    end: bool  # E
    flexible: bool  # F
    size: tuple[int, int] | None  # from the scalability structure


def parse_descriptor(payload: bytes) -> tuple[Vp9Descriptor, bytes]:
    """Split one RTP payload into its descriptor and its share of the frame.

    Raises ValueError for a truncated or malformed descriptor."""
    view = memoryview(payload)
    if len(view) < 1:
        raise ValueError("empty VP9 payload")
    flags = view[0]
    pos = 1

    def take(count: int) -> memoryview:
        nonlocal pos
        if pos + count > len(view):
            raise ValueError("VP9 payload descriptor is truncated")
        pos += count
        return view[pos - count : pos]

    picture_id = None
    if flags & _I:
        picture_id = take(1)[0]
        if picture_id & 0x80:  # M=1: a 15-bit picture ID
            picture_id = (picture_id & 0x7F) << 8 | take(1)[0]
    if flags & _L:
        take(1)
        if not flags & _F:
            take(1)  # TL0PICIDX
    if flags & _F and flags & _P:
        for _ in range(3):
            if not take(1)[0] & 1:  # N: another P_DIFF follows
                break
    size = None
    if flags & _V:
        ss = take(1)[0]
        layers = (ss >> 5) + 1
        if ss & _SS_Y:
            sizes = [struct.unpack("!HH", take(4)) for _ in range(layers)]
            size = (int(sizes[0][0]), int(sizes[0][1]))
        if ss & _SS_G:
            for _ in range(take(1)[0]):
                take((take(1)[0] >> 2) & 3)
    if pos >= len(view):
        raise ValueError("VP9 payload without frame data")
    descriptor = Vp9Descriptor(
        picture_id=picture_id,
        inter_predicted=bool(flags & _P),
        start=bool(flags & _B),
        end=bool(flags & _E),
        flexible=bool(flags & _F),
        size=size,
    )
    return descriptor, bytes(view[pos:])


@dataclass(frozen=True, slots=True)
class Vp9Frame:
    """A reassembled frame: the encoder's bytes and what its first descriptor said."""

    data: bytes
    keyframe: bool
    picture_id: int | None
    size: tuple[int, int] | None


def reassemble(payloads: list[bytes]) -> Vp9Frame:
    """The frame carried by ``payloads`` (one frame's packets in sequence order).

    Raises ValueError when its start or end is missing or the packets disagree on the picture."""
    if not payloads:
        raise ValueError("no VP9 payloads")
    parts = [parse_descriptor(payload) for payload in payloads]
    first = parts[0][0]
    if not first.start:
        raise ValueError("VP9 frame without its first packet (B=0)")
    if not parts[-1][0].end:
        raise ValueError("VP9 frame without its last packet (E=0)")
    for descriptor, _ in parts[1:]:
        if descriptor.start or descriptor.picture_id != first.picture_id:
            raise ValueError("VP9 payloads of more than one frame")
    return Vp9Frame(
        data=b"".join(data for _, data in parts),
        keyframe=not first.inter_predicted,
        picture_id=first.picture_id,
        size=first.size,
    )


class Vp9Encoder(Encoder):
    """aiortc's codec interface for VP9: packs pre-encoded ``av.Packet``s into payloads."""

    def __init__(self, picture_id: int | None = None) -> None:
        self.packetizer = Vp9Packetizer(picture_id)

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Not supported: the delivery encodes once per rung and hands packets to ``pack``."""
        raise NotImplementedError("streamlab sends pre-encoded VP9 packets (pack)")

    def pack(self, packet: av.Packet) -> tuple[list[bytes], int]:
        """The packet's RTP payloads and its RTP timestamp (90 kHz)."""
        payloads = self.packetizer.packetize(bytes(packet))
        timestamp = convert_timebase(packet.pts or 0, packet.time_base, VIDEO_TIME_BASE)
        return payloads, timestamp


class Vp9Decoder(Decoder):
    """aiortc's codec interface for VP9: reassembles a jitter-buffer frame and decodes it."""

    def __init__(self) -> None:
        self.codec: Any = av.CodecContext.create("vp9", "r")

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        """Decoded frames; an incomplete frame raises an ``av.FFmpegError`` (aiortc sends a PLI)."""
        return decode_payloads(self.codec, encoded_frame.data, encoded_frame.timestamp,
                               reassemble)  # fmt: skip
