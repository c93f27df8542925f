"""H.265 over RTP (RFC 7798): the packetiser and depacketiser on hand-made NAL units and on
real x265 output, decoded again through the aiortc decoder interface."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc.codecs.vpx import PACKET_MAX
from aiortc.jitterbuffer import JitterFrame
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab.webrtc.codecs.framing import frame_payload
from streamlab.webrtc.codecs.h265 import (
    AGGREGATION,
    FRAGMENT,
    H265Decoder,
    H265Encoder,
    H265Packetizer,
    depacketize,
    nal_type,
    reassemble,
    split_annexb,
)
from streamlab.webrtc.codecs.samples import SIZE, scene

VPS, SPS, PPS, IDR, TRAIL, AUD = 32, 33, 34, 19, 1, 35


def nal(kind: int, size: int, *, layer: int = 0, tid: int = 1, fill: int = 0x5A) -> bytes:
    """A NAL unit of ``kind`` and ``size`` bytes (header included)."""
    header = bytes([kind << 1 | layer >> 5, (layer & 0x1F) << 3 | tid])
    return header + bytes([fill]) * (size - 2)


def annexb(*nals: bytes) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)


def test_small_units_are_aggregated_and_large_ones_fragmented() -> None:
    units = [nal(AUD, 3), nal(VPS, 24), nal(SPS, 40), nal(PPS, 8), nal(IDR, 3000)]
    payloads = H265Packetizer(max_payload=1200).packetize(annexb(*units))
    assert nal_type(payloads[0]) == AGGREGATION, "VPS, SPS and PPS in one packet"
    assert [nal_type(p) for p in payloads[1:]] == [FRAGMENT] * 3
    assert all(len(p) <= 1200 for p in payloads)
    fu_headers = [p[2] for p in payloads[1:]]
    assert [h >> 6 for h in fu_headers] == [0b10, 0b00, 0b01], "S on the first, E on the last"
    assert all(h & 0x3F == IDR for h in fu_headers)
    assert depacketize(payloads) == units[1:], "the delimiter is not sent; the rest round-trips"


def test_a_lone_unit_goes_as_it_is() -> None:
    unit = nal(TRAIL, 500)
    assert H265Packetizer().packetize(annexb(unit)) == [unit]


def test_aggregation_header_takes_the_lowest_layer_and_tid() -> None:
    payload = H265Packetizer().packetize(annexb(nal(PPS, 10, tid=3), nal(TRAIL, 10, tid=2)))[0]
    assert nal_type(payload) == AGGREGATION and payload[1] & 0x07 == 2
    assert ((payload[0] & 1) << 5 | payload[1] >> 3) == 0


def test_three_and_four_byte_start_codes_split_alike() -> None:
    units = [nal(SPS, 12), nal(PPS, 6), nal(TRAIL, 30)]
    mixed = b"\x00\x00\x01" + units[0] + b"\x00\x00\x00\x01" + units[1] + b"\x00\x00\x01" + units[2]
    assert split_annexb(mixed) == units


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=3, max_value=5000), min_size=1, max_size=8),
       st.integers(min_value=8, max_value=1400))  # fmt: skip
def test_round_trip_at_any_payload_size(sizes: list[int], max_payload: int) -> None:
    units = [nal(TRAIL if i else IDR, size, fill=i + 1) for i, size in enumerate(sizes)]
    payloads = H265Packetizer(max_payload=max_payload).packetize(annexb(*units))
    assert all(len(p) <= max_payload for p in payloads)
    assert depacketize(payloads) == units


@pytest.mark.parametrize(
    "broken",
    [
        [b"\x62\x01\x93" + b"x" * 10],  # a fragment's end without its start
        [b"\x62\x01\xb3" + b"x" * 10],  # a start without its end
        [b"\x60\x01\x00\x40" + b"x" * 4],  # an aggregation unit longer than the packet
        [b"\x60"],
    ],
)
def test_broken_payloads_are_refused(broken: list[bytes]) -> None:
    with pytest.raises(ValueError):
        reassemble(broken)


def x265_packets(frames: int = 20) -> list[av.Packet]:
    """The sample scene encoded by libx265 as a low-delay camera would (Annex-B)."""
    context = av.CodecContext.create("libx265", "w")
    context.width, context.height = SIZE
    context.pix_fmt = "yuv420p"
    context.time_base = Fraction(1, 90000)
    context.framerate = Fraction(30, 1)
    context.bit_rate = 800_000
    context.options = {"preset": "ultrafast", "tune": "zerolatency",
                       "x265-params": "log-level=none:repeat-headers=1:keyint=10:pools=1"}  # fmt: skip
    packets = []
    for index in range(frames):
        video = av.VideoFrame.from_ndarray(scene(index).i420(), format="yuv420p")
        video.pts = index * 3000
        packets += context.encode(video)
    return packets + list(context.encode(None))


def decoded(units: list[bytes]) -> list[np.ndarray]:
    codec = av.CodecContext.create("hevc", "r")
    out = []
    for data in [*units, None]:
        packet = av.Packet(data) if data is not None else None
        out += [f.to_ndarray(format="yuv420p") for f in codec.decode(packet)]
    return out


def test_x265_access_units_round_trip_and_decode_alike() -> None:
    packets = x265_packets()
    assert len(packets) == 20
    encoder = H265Encoder()
    sent = [encoder.pack(p)[0] for p in packets]
    assert all(len(p) <= PACKET_MAX for payloads in sent for p in payloads)
    assert any(len(payloads) > 1 for payloads in sent), "some pictures span packets"
    units = [reassemble(payloads) for payloads in sent]
    assert [u.keyframe for u in units] == [p.is_keyframe for p in packets]
    original = decoded([bytes(p) for p in packets])
    again = decoded([u.data for u in units])
    assert len(again) == len(original) == 20
    assert all(np.array_equal(a, b) for a, b in zip(original, again, strict=True))


def test_the_aiortc_decoder_decodes_a_jitter_buffer_frame() -> None:
    packets = x265_packets(4)
    decoder = H265Decoder()
    encoder = H265Encoder()
    pictures = []
    for packet in packets:
        payloads, timestamp = encoder.pack(packet)
        data = b"".join(frame_payload(p) for p in payloads)
        pictures += decoder.decode(JitterFrame(data, timestamp))
    assert len(pictures) >= 3 and (pictures[0].width, pictures[0].height) == SIZE
