"""VP9 over RTP (RFC 9628): the packetiser and depacketiser on real libvpx-vp9 output, the
aiortc registration, and two real aiortc peers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import struct

import aiortc.codecs as aiortc_codecs
import aiortc.rtcpeerconnection as aiortc_peer
import av
import numpy as np
import pytest
from aiortc import RTCRtpSender
from aiortc.codecs.vpx import PACKET_MAX, Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab.strategies.codec import TRANSCODED, choose_codec, codecs
from streamlab.webrtc.codecs import register
from streamlab.webrtc.codecs.framing import frame_payload
from streamlab.webrtc.codecs.loopback import send_packets
from streamlab.webrtc.codecs.samples import SIZE, encode
from streamlab.webrtc.codecs.vp9 import (
    PICTURE_ID_MOD,
    Vp9Decoder,
    Vp9Encoder,
    Vp9Packetizer,
    parse_descriptor,
    parse_header,
    reassemble,
)

KEYFRAMES_AT = (0, 40)


@pytest.fixture(scope="module")
def packets() -> list[av.Packet]:
    return encode("libvpx-vp9", keyframes=KEYFRAMES_AT)


def test_every_frame_reassembles_byte_exact(packets: list[av.Packet]) -> None:
    packetizer = Vp9Packetizer(picture_id=100)
    ids = []
    for packet in packets:
        frame = reassemble(packetizer.packetize(bytes(packet)))
        assert frame.data == bytes(packet)
        assert frame.keyframe == packet.is_keyframe
        ids.append(frame.picture_id)
    assert ids == list(range(100, 100 + len(packets))), "one picture ID per frame, in order"
    assert sum(p.is_keyframe for p in packets) == len(KEYFRAMES_AT), "keyframes when asked"


def test_fragments_fit_the_mtu_with_b_e_p_v_on_the_right_packets(
    packets: list[av.Packet],
) -> None:
    packetizer = Vp9Packetizer()
    for packet in packets:
        payloads = packetizer.packetize(bytes(packet))
        parsed = [parse_descriptor(p)[0] for p in payloads]
        assert all(len(p) <= PACKET_MAX for p in payloads)
        assert [d.start for d in parsed] == [True] + [False] * (len(parsed) - 1)
        assert [d.end for d in parsed] == [False] * (len(parsed) - 1) + [True]
        assert {d.inter_predicted for d in parsed} == {not packet.is_keyframe}
        assert not any(d.flexible for d in parsed), "non-flexible mode"
        assert len({d.picture_id for d in parsed}) == 1
        sizes = [d.size for d in parsed]
        if packet.is_keyframe:
            assert len(payloads) > 3, "a keyframe spans several packets"
            assert sizes == [SIZE] + [None] * (len(sizes) - 1), "SS with the size, first only"
        else:
            assert sizes == [None] * len(sizes)
        first = payloads[0]
        assert first[0] & 0x80 and first[1] & 0x80, "I=1 with a 15-bit picture ID (M=1)"


def test_scalability_structure_is_one_layer_with_its_size(packets: list[av.Packet]) -> None:
    first = Vp9Packetizer(picture_id=5).packetize(bytes(packets[0]))[0]
    flags, picture_id, ss, width, height = struct.unpack("!BHBHH", first[:8])
    assert flags == 0b1000_1010, "I=1 P=0 L=0 F=0 B=1 E=0 V=1 Z=0"
    assert picture_id == 0x8000 | 5
    assert ss == 0b0001_0000, "N_S=0 (one spatial layer), Y=1, G=0"
    assert (width, height) == SIZE


def test_picture_id_wraps_at_2_15(packets: list[av.Packet]) -> None:
    packetizer = Vp9Packetizer(picture_id=PICTURE_ID_MOD - 2)
    ids = [parse_descriptor(packetizer.packetize(bytes(p))[0])[0].picture_id for p in packets[:4]]
    assert ids == [PICTURE_ID_MOD - 2, PICTURE_ID_MOD - 1, 0, 1]


def test_frame_header_tells_keyframes_and_their_size(packets: list[av.Packet]) -> None:
    headers = [parse_header(bytes(p)) for p in packets]
    assert [h.keyframe for h in headers] == [p.is_keyframe for p in packets]
    assert {h.size for h in headers if h.keyframe} == {SIZE}
    with pytest.raises(ValueError):
        parse_header(b"\x00\x00")


def test_incomplete_frames_are_refused(packets: list[av.Packet]) -> None:
    payloads = Vp9Packetizer().packetize(bytes(packets[0]))
    for broken in (payloads[1:], payloads[:-1]):
        with pytest.raises(ValueError):
            reassemble(broken)
        frame = JitterFrame(b"".join(frame_payload(p) for p in broken), 0)
        with pytest.raises(av.FFmpegError):  # aiortc's decoder thread answers with a PLI
            Vp9Decoder().decode(frame)


def test_decoder_decodes_jitter_buffer_frames_to_the_encoders_pictures(
    packets: list[av.Packet],
) -> None:
    decoder, reference = Vp9Decoder(), av.CodecContext.create("vp9", "r")
    encoder = Vp9Encoder()
    for index, packet in enumerate(packets):
        payloads, timestamp = encoder.pack(packet)
        assert timestamp == index * 3000, "pts in 90 kHz is the RTP timestamp"
        ours = decoder.decode(JitterFrame(b"".join(frame_payload(p) for p in payloads), 0))
        theirs = reference.decode(av.Packet(bytes(packet)))
        assert len(ours) == len(theirs) == 1
        assert np.array_equal(ours[0].to_ndarray(), theirs[0].to_ndarray())


def test_register_appends_vp9_and_av1_and_keeps_vp8_h264() -> None:
    register()
    register()  # idempotent
    video = aiortc_codecs.CODECS["video"]
    by_type = {c.payloadType: c for c in video}
    assert [by_type[t].mimeType for t in range(97, 103)] == [
        "video/VP8", "video/rtx", "video/H264", "video/rtx", "video/H264", "video/rtx"
    ]  # fmt: skip
    vp9 = [c for c in video if c.mimeType == "video/VP9"]
    av1 = [c for c in video if c.mimeType == "video/AV1"]
    assert len(vp9) == len(av1) == 1, "registered once"
    assert vp9[0].parameters == {"profile-id": "0"} and av1[0].parameters == {"profile": "0"}
    assert min(vp9[0].payloadType, av1[0].payloadType) > 102
    for codec in (vp9[0], av1[0]):
        feedback = {(f.type, f.parameter) for f in codec.rtcpFeedback}
        assert feedback == {("nack", None), ("nack", "pli"), ("goog-remb", None)}
        assert any(c.parameters.get("apt") == codec.payloadType for c in video), "with RTX"
    assert isinstance(aiortc_codecs.get_encoder(vp9[0]), Vp9Encoder)
    assert isinstance(aiortc_codecs.get_encoder(by_type[97]), Vp8Encoder)
    offered = {c.mimeType for c in RTCRtpSender.getCapabilities("video").codecs}
    assert {"video/VP8", "video/H264", "video/VP9", "video/AV1"} <= offered


def test_vp9_and_av1_strategies_come_after_vp8_and_h264() -> None:
    assert TRANSCODED[:2] == ("vp8", "h264") and set(TRANSCODED[2:]) == {"vp9", "av1"}
    vp8, vp9, av1 = (codecs.create(n) for n in ("vp8", "vp9", "av1"))
    assert (vp9.mime, vp9.encoder, av1.mime, av1.encoder) == (
        "video/VP9", "libvpx-vp9", "video/AV1", "libsvtav1"
    )  # fmt: skip
    assert choose_codec(vp8, {"video/vp8", "video/vp9"}) == vp8, "existing choices hold"
    assert choose_codec(vp9, {"video/vp8", "video/vp9"}) == vp9
    assert choose_codec(vp8, {"video/vp9"}) == vp9
    assert choose_codec(vp8, {"video/av1"}) == av1


async def test_two_aiortc_peers_decode_vp9(packets: list[av.Packet]) -> None:
    delivered = await send_packets("video/VP9", packets)
    assert delivered.mime == "video/VP9"
    assert len(delivered.sizes) >= 0.9 * len(packets)
    assert set(delivered.sizes) == {SIZE}


def test_only_profile_0_is_matched() -> None:
    """Chromium offers VP9 profiles 0-3 and AV1 profiles 0-1; we send profile 0 only."""
    register()
    ours = {c.mimeType: c for c in aiortc_codecs.CODECS["video"]}

    def offered(mime: str, **parameters: str) -> RTCRtpCodecParameters:
        return RTCRtpCodecParameters(mimeType=mime, clockRate=90000, payloadType=98,
                                     parameters=dict(parameters))  # fmt: skip

    matches = aiortc_peer.is_codec_compatible
    assert matches(ours["video/VP9"], offered("video/VP9", **{"profile-id": "0"}))
    assert matches(ours["video/VP9"], offered("video/VP9"))  # absent means 0
    assert not matches(ours["video/VP9"], offered("video/VP9", **{"profile-id": "2"}))
    assert matches(ours["video/AV1"], offered("video/AV1", profile="0", tier="0"))
    assert not matches(ours["video/AV1"], offered("video/AV1", profile="1"))
    assert matches(ours["video/VP8"], offered("video/VP8"))


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.binary(max_size=24), min_size=1, max_size=4), st.binary(max_size=8))
def test_malformed_payloads_only_raise_value_error(payloads: list[bytes], header: bytes) -> None:
    """Whatever arrives, the depacketiser raises ValueError (which the decoder turns into an
    error aiortc's decoder thread survives), never anything else."""
    with contextlib.suppress(ValueError):
        reassemble(payloads)
    with contextlib.suppress(ValueError):
        parse_header(header)
