"""AV1 open bitstream units (OBUs): split a temporal unit, rebuild one (AV1 spec section 5)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SEQUENCE_HEADER = 1
TEMPORAL_DELIMITER = 2
FRAME_HEADER = 3
FRAME = 6
TILE_LIST = 8
PADDING = 15

KEY_FRAME = 0

_EXTENSION_FLAG = 0x04
_HAS_SIZE_FLAG = 0x02
TEMPORAL_DELIMITER_OBU = bytes([TEMPORAL_DELIMITER << 3 | _HAS_SIZE_FLAG, 0])


def leb128(value: int) -> bytes:
    """``value`` as unsigned LEB128 (7 bits a byte, low bits first)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_leb128(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The LEB128 value at ``pos`` and the position after it (at most 8 bytes, as AV1 says)."""
    value = 0
    for index in range(8):
        if pos + index >= len(data):
            break
        byte = data[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, pos + index + 1
    raise ValueError("truncated or overlong leb128")


@dataclass(frozen=True, slots=True)
class Obu:
    """One OBU: its header (``obu_has_size_field`` cleared) and its payload."""

    header: bytes
    payload: bytes

    @property
    def type(self) -> int:
        return (self.header[0] >> 3) & 0x0F

    @property
    def element(self) -> bytes:
        """The OBU as an RTP OBU element: without its size field."""
        return self.header + self.payload

    @property
    def sized(self) -> bytes:
        """The OBU as the low-overhead bitstream format has it: with ``obu_size``."""
        return (
            bytes([self.header[0] | _HAS_SIZE_FLAG])
            + self.header[1:]
            + leb128(len(self.payload))
            + self.payload
        )


def _read_obu(data: bytes | memoryview, pos: int, *, last: bool) -> tuple[Obu, int]:
    if pos >= len(data):
        raise ValueError("truncated OBU header")
    first = data[pos]
    if first & 0x80:
        raise ValueError("OBU forbidden bit set")
    header_size = 2 if first & _EXTENSION_FLAG else 1
    if pos + header_size > len(data):
        raise ValueError("truncated OBU extension header")
    header = bytes([first & ~_HAS_SIZE_FLAG]) + bytes(data[pos + 1 : pos + header_size])
    pos += header_size
    if first & _HAS_SIZE_FLAG:
        size, pos = read_leb128(data, pos)
    elif last:
        size = len(data) - pos
    else:
        raise ValueError("an OBU without obu_size must be the last one")
    if pos + size > len(data):
        raise ValueError("OBU runs past the end of its data")
    return Obu(header, bytes(data[pos : pos + size])), pos + size


def parse_obus(data: bytes) -> list[Obu]:
    """The OBUs of a temporal unit in the low-overhead bitstream format (each with a size
    field, except possibly the last)."""
    view = memoryview(data)
    obus = []
    pos = 0
    while pos < len(view):
        obu, pos = _read_obu(view, pos, last=True)
        obus.append(obu)
    return obus


def parse_element(element: bytes) -> Obu:
    """The OBU an RTP OBU element carries (its size field, if the sender kept one, is read)."""
    obu, end = _read_obu(element, 0, last=True)
    if end != len(element):
        raise ValueError("OBU element has bytes after its OBU")
    return obu


def temporal_unit(obus: Iterable[Obu]) -> bytes:
    """A temporal unit a decoder takes: a temporal delimiter, then each OBU with its size."""
    return TEMPORAL_DELIMITER_OBU + b"".join(
        obu.sized for obu in obus if obu.type != TEMPORAL_DELIMITER
    )


def frame_type(obus: Iterable[Obu]) -> int | None:
    """The ``frame_type`` of the first frame (header) OBU, or None if there is none or it
    shows an existing frame. Assumes ``reduced_still_picture_header`` is 0 (video)."""
    for obu in obus:
        if obu.type in (FRAME, FRAME_HEADER) and obu.payload:
            first = obu.payload[0]
            if first & 0x80:  # show_existing_frame
                return None
            return (first >> 5) & 0x03
    return None
