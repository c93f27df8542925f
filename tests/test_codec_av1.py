"""AV1 over RTP (AOMedia payload format): the packetiser and depacketiser on real SVT-AV1
output, the encoder's sequence headers, and two real aiortc peers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import itertools
import re
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.vpx import PACKET_MAX
from aiortc.jitterbuffer import JitterFrame
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab.webrtc.codecs import obu
from streamlab.webrtc.codecs.av1 import (
    Av1Decoder,
    Av1Encoder,
    Av1Packetizer,
    parse_payload,
    reassemble,
    sequence_header_of,
    with_sequence_header,
)
from streamlab.webrtc.codecs.framing import frame_payload
from streamlab.webrtc.codecs.loopback import send_from, send_packets
from streamlab.webrtc.codecs.samples import SIZE, encode

KEYFRAMES_AT = (0, 20, 40)


@pytest.fixture(scope="module")
def packets() -> list[av.Packet]:
    return encode("libsvtav1", keyframes=KEYFRAMES_AT)


def dav1d() -> Any:
    decoder = av.CodecContext.create("libdav1d", "r")
    decoder.options = {"max_frame_delay": "1"}
    return decoder


def pictures(decoder: Any, data: bytes) -> list[np.ndarray]:
    return [frame.to_ndarray() for frame in decoder.decode(av.Packet(data))]


def test_every_temporal_unit_decodes_to_the_encoders_pictures(packets: list[av.Packet]) -> None:
    ours, theirs = dav1d(), dav1d()
    packetizer = Av1Packetizer()
    for packet in packets:
        unit = reassemble(packetizer.packetize(bytes(packet), packet.is_keyframe))
        assert unit.keyframe == packet.is_keyframe
        mine, reference = pictures(ours, unit.data), pictures(theirs, bytes(packet))
        assert len(mine) == len(reference) == 1
        assert np.array_equal(mine[0], reference[0])


def test_keyframes_are_key_frames_when_asked(packets: list[av.Packet]) -> None:
    keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keyframes == list(KEYFRAMES_AT), "no keyframes but the asked-for ones (scd=0)"
    for index in keyframes:
        assert obu.frame_type(obu.parse_obus(bytes(packets[index]))) == obu.KEY_FRAME


def test_fragments_fit_the_mtu_with_z_y_n_on_the_right_packets(packets: list[av.Packet]) -> None:
    packetizer = Av1Packetizer()
    spanning = 0
    for packet in packets:
        payloads = packetizer.packetize(bytes(packet), packet.is_keyframe)
        parsed = [parse_payload(p) for p in payloads]
        assert all(len(p) <= PACKET_MAX for p in payloads)
        assert not parsed[0].continues and not parsed[-1].fragment_follows
        for before, after in itertools.pairwise(parsed):
            assert after.continues == before.fragment_follows, "Z continues what Y left open"
        assert [p.new_sequence for p in parsed] == [packet.is_keyframe] + [False] * (
            len(parsed) - 1
        ), "N=1 on a keyframe's first packet only"
        spanning += len(payloads) > 3
        for payload in payloads:
            count = (payload[0] >> 4) & 3
            elements = parse_payload(payload).elements
            assert count in (0, len(elements)) and (count or len(elements) > 3)
    assert spanning >= len(KEYFRAMES_AT), "keyframes span several packets"


def test_obu_elements_have_no_size_field_and_no_delimiters(packets: list[av.Packet]) -> None:
    assert obu.parse_obus(bytes(packets[1]))[0].type == obu.TEMPORAL_DELIMITER, "encoder sends"
    packetizer = Av1Packetizer()
    for packet in packets:
        payloads = packetizer.packetize(bytes(packet), packet.is_keyframe)
        for payload in map(parse_payload, payloads):
            whole = payload.elements[1:] if payload.continues else payload.elements
            for element in whole:
                assert not element[0] & 0x02, "obu_has_size_field is 0"
                assert (element[0] >> 3) & 15 not in (obu.TEMPORAL_DELIMITER, obu.PADDING)


def test_sequence_header_first_on_every_keyframe(packets: list[av.Packet]) -> None:
    packetizer = Av1Packetizer()
    for packet in packets:
        first = parse_payload(packetizer.packetize(bytes(packet), packet.is_keyframe)[0])
        types = [(element[0] >> 3) & 15 for element in first.elements]
        if packet.is_keyframe:
            assert types[0] == obu.SEQUENCE_HEADER
        else:
            assert obu.SEQUENCE_HEADER not in types


def strip_sequence_header(data: bytes) -> bytes:
    return b"".join(o.sized for o in obu.parse_obus(data) if o.type != obu.SEQUENCE_HEADER)


def test_a_keyframe_without_sequence_header_gets_the_cached_one(
    packets: list[av.Packet],
) -> None:
    """SVT-AV1 may write the sequence header into the first keyframe only."""
    packetizer = Av1Packetizer()
    packetizer.packetize(bytes(packets[0]), True)
    later = KEYFRAMES_AT[1]
    bare = strip_sequence_header(bytes(packets[later]))
    unit = reassemble(packetizer.packetize(bare, True))
    assert unit.keyframe and unit.obus[0].type == obu.SEQUENCE_HEADER
    decoder = dav1d()  # joins at this keyframe, as a new viewer does
    assert len(pictures(decoder, unit.data)) == 1
    for packet in packets[later + 1 : later + 5]:
        assert len(pictures(decoder, reassemble(packetizer.packetize(bytes(packet), False)).data))


def test_the_shared_encoder_puts_a_sequence_header_in_every_keyframe(
    packets: list[av.Packet],
) -> None:
    for packet in packets:
        types = [o.type for o in obu.parse_obus(bytes(packet))]
        assert (obu.SEQUENCE_HEADER in types) == packet.is_keyframe
    header = next(o for o in obu.parse_obus(bytes(packets[0])) if o.type == 1).sized
    bare = strip_sequence_header(bytes(packets[KEYFRAMES_AT[1]]))
    restored, cached = with_sequence_header(bare, header)
    assert cached == header
    assert [o.type for o in obu.parse_obus(restored)][:2] == [obu.TEMPORAL_DELIMITER, 1]
    assert with_sequence_header(bytes(packets[0]), None) == (bytes(packets[0]), header)
    assert sequence_header_of(header) is not None
    assert sequence_header_of(bytes([0x81, 0, 0, 0]) + header) == obu.parse_obus(header)[0]


def test_w_counts_up_to_three_elements_and_is_zero_beyond() -> None:
    metadata = [bytes([5 << 3 | 2, 2, 1, n]) for n in range(5)]  # five tiny metadata OBUs
    for count in (1, 3, 4, 5):
        payloads = Av1Packetizer().packetize(b"".join(metadata[:count]), False)
        assert len(payloads) == 1
        assert (payloads[0][0] >> 4) & 3 == (count if count <= 3 else 0)
        assert [o.payload for o in reassemble(payloads).obus] == [m[2:] for m in metadata[:count]]


def test_leb128_round_trips() -> None:
    for value in (0, 1, 127, 128, 300, 16383, 16384, 2**32):
        data = obu.leb128(value)
        assert obu.read_leb128(data, 0) == (value, len(data))
    with pytest.raises(ValueError):
        obu.read_leb128(b"\x80\x80", 0)


def test_incomplete_units_are_refused(packets: list[av.Packet]) -> None:
    payloads = Av1Packetizer().packetize(bytes(packets[0]), True)
    for broken in (payloads[1:], payloads[:-1]):  # a gap inside is RTP's to see (sequence)
        with pytest.raises(ValueError):
            reassemble(broken)
        frame = JitterFrame(b"".join(frame_payload(p) for p in broken), 0)
        with pytest.raises(av.FFmpegError):  # aiortc's decoder thread answers with a PLI
            Av1Decoder().decode(frame)


def test_decoder_decodes_jitter_buffer_frames(packets: list[av.Packet]) -> None:
    decoder, encoder = Av1Decoder(), Av1Encoder()
    for index, packet in enumerate(packets):
        payloads, timestamp = encoder.pack(packet)
        assert timestamp == index * 3000, "pts in 90 kHz is the RTP timestamp"
        frames = decoder.decode(JitterFrame(b"".join(frame_payload(p) for p in payloads), 0))
        assert [(f.width, f.height) for f in frames] == [SIZE]


async def test_two_aiortc_peers_decode_av1(packets: list[av.Packet]) -> None:
    delivered = await send_packets("video/AV1", packets)
    assert delivered.mime == "video/AV1"
    assert len(delivered.sizes) >= 0.9 * len(packets)
    assert set(delivered.sizes) == {SIZE}


async def test_answer_keeps_the_offers_payload_type_below_96() -> None:
    """Chromium offers AV1 at 45 (96-127 are full); the answer must use 45, not ours."""
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        offerer.addTransceiver("video", direction="recvonly")
        await offerer.setLocalDescription(await offerer.createOffer())
        av1 = next(c for c in offerer.getTransceivers()[0]._codecs if c.mimeType == "video/AV1")
        ours = av1.payloadType
        assert ours is not None
        offer = re.sub(rf"\b{ours}\b", "45", offerer.localDescription.sdp)
        offer = re.sub(rf"\bapt={ours}\b", "apt=45", offer)
        send_from(answerer, "video/AV1", [])
        await answerer.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await answerer.setLocalDescription(await answerer.createAnswer())
        answer = answerer.localDescription.sdp
    finally:
        await offerer.close()
        await answerer.close()
    assert "a=rtpmap:45 AV1/90000" in answer
    assert f"a=rtpmap:{ours} AV1" not in answer
    assert re.search(r"m=video \d+ \S+ 45\r?\n", answer)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.binary(max_size=24), min_size=1, max_size=4))
def test_malformed_payloads_only_raise_value_error(payloads: list[bytes]) -> None:
    """Whatever arrives, the depacketiser raises ValueError (which the decoder turns into an
    error aiortc's decoder thread survives), never anything else."""
    with contextlib.suppress(ValueError):
        reassemble(payloads)
    with contextlib.suppress(ValueError):
        obu.parse_obus(payloads[0])


@pytest.fixture(scope="module")
def keyframe_payloads(packets: list[av.Packet]) -> list[bytes]:
    return Av1Packetizer().packetize(bytes(packets[KEYFRAMES_AT[1]]), True)


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from([0, 1, -1]), st.integers(0, 40), st.integers(0, 255))
def test_corrupted_payloads_only_raise_value_error(
    keyframe_payloads: list[bytes], which: int, index: int, value: int
) -> None:
    """A corrupted byte where the headers are (aggregation header, lengths, OBU headers) is
    refused with ValueError or reassembles; the decoder fails with ``av.FFmpegError`` only."""
    payloads = list(keyframe_payloads)
    corrupted = bytearray(payloads[which])
    corrupted[index] = value
    payloads[which] = bytes(corrupted)
    with contextlib.suppress(ValueError):
        assert isinstance(reassemble(payloads).data, bytes)
    with contextlib.suppress(av.FFmpegError):
        Av1Decoder().decode(JitterFrame(b"".join(frame_payload(p) for p in payloads), 0))
