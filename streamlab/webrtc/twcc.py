"""Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-
extensions-01): the wire format, and its plumbing on aiortc peers.

The sender numbers every RTP packet it puts on a transport (media, retransmissions, padding)
in one 16-bit sequence, in a header extension; the receiver reports, every 50-100 ms, which
of those numbers arrived and when (RTCP RTPFB, FMT 15). Browsers stop sending REMB once the
extension is negotiated and send this instead, which lets the sender measure what the link
delivered, packet by packet: probes, throughput, queuing delay. aiortc knows the extension's
header field but neither negotiates it nor sends or reads the feedback, so this module:

- ``negotiate(transceiver, offer_sdp)``: answers the extension when a viewer offered it;
- ``stamp(sender)``: numbers every packet the sender serialises;
- ``hook_feedback(dtls, callback)``: hands each feedback packet to ``callback``;
- ``FeedbackWriter``: the receiving side, for the project's own aiortc viewer.

All aiortc-private, so aiortc is pinned in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpHeaderExtensionParameters

URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
RTPFB = 205
FMT = 15
DELTA_UNIT_US = 250
REFERENCE_UNIT_US = 64_000
FEEDBACK_INTERVAL_S = 0.05
MAX_PACKETS_PER_FEEDBACK = 2000

_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? " + re.escape(URI) + r"\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Arrival:
    """One reported packet: its transport sequence number, and when it arrived in the
    receiver's clock (seconds, None: not received)."""

    seq: int
    at: float | None


def offered_id(sdp: str) -> int | None:
    """The extension id the SDP gives transport-wide sequence numbers (None: not offered)."""
    match = _EXTMAP.search(sdp)
    return int(match.group(1)) if match else None


def feedback_types() -> list[RTCRtcpFeedback]:
    """The RTCP feedback a codec needs listed for a peer to send transport-cc reports."""
    return [RTCRtcpFeedback(type="transport-cc")]


def negotiate(transceiver: Any, offer_sdp: str) -> int | None:
    """After ``setRemoteDescription``: answer the extension when ``offer_sdp`` offered it
    (and ``transport-cc`` feedback on the chosen codecs). Returns its id, or None."""
    extension_id = offered_id(offer_sdp)
    if extension_id is None:
        return None
    extensions = transceiver._headerExtensions
    if any(e.id == extension_id and e.uri != URI for e in extensions):
        return None  # the id is taken by another extension: leave the answer alone
    if not any(e.uri == URI for e in extensions):
        extensions.append(RTCRtpHeaderExtensionParameters(id=extension_id, uri=URI))
    for codec in transceiver._codecs:
        if not any(f.type == "transport-cc" for f in codec.rtcpFeedback):
            codec.rtcpFeedback.append(RTCRtcpFeedback(type="transport-cc"))
    return extension_id


def stamp(sender: Any) -> None:
    """Number every packet ``sender`` serialises (media, retransmissions, padding) in one
    transport-wide sequence; the extension must be in its negotiated parameters."""
    extensions_map = sender._RTCRtpSender__rtp_header_extensions_map
    original = extensions_map.set
    counter = itertools.count(1)

    def set_with_sequence(values: Any) -> Any:
        values.transport_sequence_number = next(counter) & 0xFFFF
        return original(values)

    extensions_map.set = set_with_sequence


def sequence_of(packet: bytes, extension_id: int) -> int | None:
    """The transport-wide sequence number in an RTP packet's one-byte header extensions."""
    if len(packet) < 12 or not packet[0] & 0x10:
        return None
    at = 12 + 4 * (packet[0] & 0x0F)
    if len(packet) < at + 4 or packet[at : at + 2] != b"\xbe\xde":
        return None
    end = at + 4 + 4 * int.from_bytes(packet[at + 2 : at + 4], "big")
    at += 4
    while at < min(end, len(packet)):
        byte = packet[at]
        if byte == 0:
            at += 1
            continue
        element_id, length = byte >> 4, (byte & 0x0F) + 1
        if element_id == 15:
            return None
        if element_id == extension_id and length == 2 and at + 3 <= len(packet):
            return int.from_bytes(packet[at + 1 : at + 3], "big")
        at += 1 + length
    return None


# -- the feedback packet ----------------------------------------------------------------


def parse_feedback(data: bytes) -> list[list[Arrival]]:
    """Every transport-cc feedback in a compound RTCP packet, each as its packets in order
    (arrival times in seconds of the receiver's clock). Malformed ones are skipped."""
    found = []
    at = 0
    while at + 4 <= len(data):
        first, packet_type = data[at], data[at + 1]
        words = struct.unpack_from("!H", data, at + 2)[0]
        end = at + 4 + 4 * words
        if end > len(data):
            break
        if packet_type == RTPFB and first & 0x1F == FMT:
            with contextlib.suppress(ValueError, struct.error, IndexError):
                found.append(_parse_one(data[at + 12 : end]))
        at = end
    return found


def _parse_one(fci: bytes) -> list[Arrival]:
    base, count = struct.unpack_from("!HH", fci, 0)
    reference = int.from_bytes(fci[4:7], "big", signed=True)
    at = 8
    symbols: list[int] = []
    while len(symbols) < count:
        chunk = struct.unpack_from("!H", fci, at)[0]
        at += 2
        if not chunk & 0x8000:  # run length
            symbols.extend([(chunk >> 13) & 0x3] * (chunk & 0x1FFF))
        elif not chunk & 0x4000:  # 14 one-bit symbols
            symbols.extend((chunk >> (13 - i)) & 0x1 for i in range(14))
        else:  # 7 two-bit symbols
            symbols.extend((chunk >> (12 - 2 * i)) & 0x3 for i in range(7))
    symbols = symbols[:count]
    clock_us = reference * REFERENCE_UNIT_US
    arrivals = []
    for index, symbol in enumerate(symbols):
        seq = (base + index) & 0xFFFF
        if symbol == 1:
            clock_us += fci[at] * DELTA_UNIT_US
            at += 1
        elif symbol == 2:
            clock_us += struct.unpack_from("!h", fci, at)[0] * DELTA_UNIT_US
            at += 2
        elif symbol != 0:
            raise ValueError("reserved status symbol")
        if at > len(fci):
            raise ValueError("feedback shorter than its deltas")
        arrivals.append(Arrival(seq, clock_us / 1e6 if symbol else None))
    return arrivals


def build_feedback(
    sender_ssrc: int, media_ssrc: int, base: int, arrivals_us: list[int | None], count: int
) -> bytes:
    """One feedback packet for ``arrivals_us`` (receiver-clock µs, None: not received) of
    the sequence numbers from ``base``; ``count`` is the feedback packet counter."""
    first = next(a for a in arrivals_us if a is not None)
    reference = first // REFERENCE_UNIT_US
    clock = reference * REFERENCE_UNIT_US
    symbols, deltas = [], bytearray()
    for arrival in arrivals_us:
        if arrival is None:
            symbols.append(0)
            continue
        delta = (arrival - clock) // DELTA_UNIT_US
        delta = max(-32768, min(32767, delta))
        clock += delta * DELTA_UNIT_US
        if 0 <= delta <= 255:
            symbols.append(1)
            deltas.append(delta)
        else:
            symbols.append(2)
            deltas += struct.pack("!h", delta)
    chunks = bytearray()
    for start in range(0, len(symbols), 7):
        group = symbols[start : start + 7]
        chunk = 0xC000
        for i, symbol in enumerate(group):
            chunk |= symbol << (12 - 2 * i)
        chunks += struct.pack("!H", chunk)
    fci = (struct.pack("!HH", base & 0xFFFF, len(symbols))
           + (reference & 0xFFFFFF).to_bytes(3, "big") + bytes([count & 0xFF])
           + chunks + deltas)  # fmt: skip
    fci += b"\x00" * (-len(fci) % 4)
    body = struct.pack("!LL", sender_ssrc, media_ssrc) + fci
    return struct.pack("!BBH", 0x80 | FMT, RTPFB, len(body) // 4) + body


# -- plumbing on aiortc transports ------------------------------------------------------


def hook_feedback(dtls: Any, callback: Callable[[list[Arrival]], None]) -> None:
    """Hand every transport-cc feedback ``dtls`` receives to ``callback`` (aiortc's own
    handling of the compound packet goes on)."""
    original = dtls._handle_rtcp_data

    async def handle(data: bytes) -> None:
        if len(data) > 1 and data.find(bytes([RTPFB])) >= 0:
            for arrivals in parse_feedback(data):
                callback(arrivals)
        await original(data)

    dtls._handle_rtcp_data = handle


def unhook(dtls: Any) -> None:
    """Undo ``hook_feedback`` and ``FeedbackWriter.attach`` on ``dtls``."""
    for name in ("_handle_rtcp_data", "_handle_rtp_data"):
        dtls.__dict__.pop(name, None)


def offer_with_extension(sdp: str, extension_id: int = 9) -> str:
    """``sdp`` (an aiortc offer) with the extension and transport-cc feedback added to its
    video section, as a browser offers them."""
    lines = sdp.split("\r\n")
    out: list[str] = []
    in_video = False
    for line in lines:
        if line.startswith("m="):
            if in_video:
                out.append(f"a=extmap:{extension_id} {URI}")
            in_video = line.startswith("m=video")
        out.append(line)
        if in_video and line.startswith("a=rtpmap:"):
            payload_type = line.split(":", 1)[1].split(" ", 1)[0]
            out.append(f"a=rtcp-fb:{payload_type} transport-cc")
    if in_video:
        end = len(out) - 1 if out and out[-1] == "" else len(out)
        out.insert(end, f"a=extmap:{extension_id} {URI}")
    return "\r\n".join(out)


class FeedbackWriter:
    """The receiving side for an aiortc peer: notes each packet's transport sequence number
    and arrival, and sends feedback every ``FEEDBACK_INTERVAL_S`` (as libwebrtc does)."""

    def __init__(self, dtls: Any, extension_id: int, clock: Callable[[], float]) -> None:
        self.dtls = dtls
        self.extension_id = extension_id
        self.clock = clock
        self.sent = 0
        self._arrivals: dict[int, int] = {}  # unwrapped seq -> µs
        self._next: int | None = None  # first unwrapped seq not reported yet
        self._highest: int | None = None
        self._media_ssrc = 0
        self._task: asyncio.Task[None] | None = None

    def attach(self) -> None:
        original = self.dtls._handle_rtp_data

        async def handle(data: bytes, arrival_time_ms: int) -> None:
            self.note(data)
            await original(data, arrival_time_ms)

        self.dtls._handle_rtp_data = handle
        self._task = asyncio.create_task(self._run())

    def note(self, packet: bytes) -> None:
        seq = sequence_of(packet, self.extension_id)
        if seq is None:
            return
        if self._highest is None:
            unwrapped = seq
            self._next = seq
        else:
            delta = (seq - self._highest) & 0xFFFF
            unwrapped = self._highest + (delta if delta < 0x8000 else delta - 0x10000)
        if self._next is not None and unwrapped < self._next:
            return  # already reported as lost: too late
        if self._highest is None or unwrapped > self._highest:
            self._highest = unwrapped
        if len(self._arrivals) < 4 * MAX_PACKETS_PER_FEEDBACK:
            self._arrivals[unwrapped] = int(self.clock() * 1e6)
        if not self._media_ssrc and packet[1] & 0x7F >= 96:
            self._media_ssrc = int.from_bytes(packet[8:12], "big")

    def take(self) -> bytes | None:
        """The feedback for what arrived since the last one (None: nothing new)."""
        if self._next is None or self._highest is None or not self._arrivals:
            return None
        first = self._next
        last = min(self._highest, first + MAX_PACKETS_PER_FEEDBACK - 1)
        arrivals = [self._arrivals.pop(seq, None) for seq in range(first, last + 1)]
        self._next = last + 1
        for seq in [s for s in self._arrivals if s < self._next]:
            del self._arrivals[seq]
        if all(a is None for a in arrivals):
            return None
        self.sent += 1
        return build_feedback(1, self._media_ssrc, first, arrivals, self.sent)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FEEDBACK_INTERVAL_S)
            packet = self.take()
            if packet is not None:
                with contextlib.suppress(ConnectionError):
                    await self.dtls._send_rtp(packet)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        unhook(self.dtls)
