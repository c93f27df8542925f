"""How one frame's RTP payloads travel through aiortc's jitter buffer to our decoders.

aiortc joins the depayloaded bytes of a frame's packets into one ``JitterFrame``. Our
depacketisers need the payloads themselves (descriptors, fragment flags), so ``depayload``
length-prefixes each payload and the decoder splits the joined bytes again.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from typing import Any

import av
from aiortc.mediastreams import VIDEO_TIME_BASE

_LENGTH = struct.Struct("!H")


def frame_payload(payload: bytes) -> bytes:
    """``payload`` with its length in front (RTP payloads are below 64 KiB)."""
    return _LENGTH.pack(len(payload)) + payload


def split_payloads(data: bytes) -> list[bytes]:
    """The payloads ``frame_payload`` framed and aiortc joined, in order.

    Raises ValueError when ``data`` does not split into whole payloads."""
    payloads = []
    pos = 0
    while pos < len(data):
        if pos + _LENGTH.size > len(data):
            raise ValueError("truncated payload length")
        (length,) = _LENGTH.unpack_from(data, pos)
        pos += _LENGTH.size
        if pos + length > len(data):
            raise ValueError("truncated payload")
        payloads.append(data[pos : pos + length])
        pos += length
    return payloads


def invalid_data(message: str) -> av.error.InvalidDataError:
    """An error aiortc's decoder thread survives and answers with a PLI (it catches only
    ``av.FFmpegError``; anything else would end the thread)."""
    return av.error.InvalidDataError(errno.EINVAL, message)


def decode_payloads(codec: Any, data: bytes, timestamp: int,
                    reassemble: Callable[[list[bytes]], Any]) -> list[Any]:  # fmt: skip
    """Decode one jitter-buffer frame: its payloads reassembled (``reassemble(...).data``)
    into a packet stamped ``timestamp`` (90 kHz); a payload that does not reassemble
    raises ``av.FFmpegError`` (aiortc's decoder thread then asks for a keyframe)."""
    try:
        unit = reassemble(split_payloads(data))
    except ValueError as exc:
        raise invalid_data(str(exc)) from None
    packet = av.Packet(unit.data)
    packet.pts = timestamp
    packet.time_base = VIDEO_TIME_BASE
    return list(codec.decode(packet))
