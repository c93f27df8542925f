"""``playout_delay``: the spec, the RTP header extension on the wire of a real aiortc peer
that offered it, live changes per stream and per viewer, and bad values refused."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpParameters
from aiortc.rtp import RtpPacket

import streamlab as sl
from streamlab.delivery.playout import URI, PlayoutDelay, normalized, offered_id
from streamlab.testing import until
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.ice import local_addresses
from streamlab.webrtc.playout import PlayoutHint
from streamlab.webrtc.server import Server

CHROMIUM_LIKE_VIDEO = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:5 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    f"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=extmap:2 http://x/abs-send-time\r\na=extmap:7 {URI}\r\n"
)


@pytest.mark.parametrize(
    ("spec", "expected", "wire"),
    [
        ("0", (0, 0), b"\x00\x00\x00"),
        ("200", (200, 200), b"\x01\x40\x14"),
        ("0-1000", (0, 1000), b"\x00\x00\x64"),
        (" 40950ms ", (40950, 40950), b"\xff\xff\xff"),
        ("browser", None, None),
    ],
)
def test_a_spec_is_a_range_in_10_ms_steps_and_three_bytes_on_the_wire(
    spec: str, expected: tuple[int, int] | None, wire: bytes | None
) -> None:
    delay = PlayoutDelay.parse(spec)
    if expected is None:
        assert delay is None and normalized(spec) == "browser"
        return
    assert delay is not None and (delay.min_ms, delay.max_ms) == expected
    assert delay.payload() == wire
    assert PlayoutDelay.parse(normalized(spec)) == delay, "the canonical spelling parses back"


@pytest.mark.parametrize("spec", ["", "fast", "5", "-10", "300-200", "40960", "0-", "1e3"])
def test_a_bad_spec_is_one_clear_config_error(spec: str) -> None:
    with pytest.raises(sl.ConfigError) as error:
        sl.load_config(playout_delay=spec)
    assert "playout_delay" in str(error.value) and "\n" not in str(error.value)


def test_the_offered_id_is_read_from_the_video_section_only() -> None:
    assert offered_id(CHROMIUM_LIKE_VIDEO) == 7
    assert offered_id(CHROMIUM_LIKE_VIDEO.replace(URI, "urn:other")) is None
    audio_only = CHROMIUM_LIKE_VIDEO.split("m=video")[0] + f"a=extmap:3 {URI}\r\n"
    assert offered_id(audio_only) is None


def extension(packet: bytes, extension_id: int) -> bytes | None:
    """The value of one-byte-header extension ``extension_id`` in a raw RTP packet."""
    if not packet[0] & 0x10:
        return None
    offset = 12 + 4 * (packet[0] & 0x0F)
    profile, words = struct.unpack("!HH", packet[offset : offset + 4])
    assert profile == 0xBEDE
    body = packet[offset + 4 : offset + 4 + 4 * words]
    index = 0
    while index < len(body):
        if body[index] == 0:
            index += 1
            continue
        found, length = body[index] >> 4, (body[index] & 0x0F) + 1
        if found == extension_id:
            return body[index + 1 : index + 1 + length]
        index += 1 + length
    return None


def test_the_hint_rides_beside_aiortcs_own_extensions_and_undoes_itself() -> None:
    hint = PlayoutHint(7, PlayoutDelay(0, 0))
    hint.configure(RTCRtpParameters())
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=3000, payload=b"x")
    packet.extensions.mid = "0"
    assert extension(packet.serialize(hint), 7) == b"\x00\x00\x00"
    hint.delay = PlayoutDelay(100, 100)
    assert extension(packet.serialize(hint), 7) == PlayoutDelay(100, 100).payload()
    hint.delay = None
    assert extension(packet.serialize(hint), 7) == PlayoutDelay(0, 10_000).payload(), (
        "back to the browser's own range, since a receiver keeps the last one it saw"
    )
    never = PlayoutHint(7, None)
    assert extension(packet.serialize(never), 7) is None, "no hint was ever sent: nothing"


class OfferingPeer:
    """A real aiortc receiver whose offer lists the playout-delay extension (as Chromium's
    does) and which records the extension's value on every RTP packet it gets."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[bytes | None] = []
        self.answer = ""
        self.location = ""
        with local_addresses(("127.0.0.1",)):
            self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.transceiver = self.pc.addTransceiver("video", direction="recvonly")

    async def connect(self) -> OfferingPeer:
        with local_addresses(("127.0.0.1",)):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp.replace(
            "a=mid:0\r\n", f"a=mid:0\r\na=extmap:7 {URI}\r\n", 1
        )
        assert offered_id(offer) == 7
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url, data=offer, headers={"Content-Type": "application/sdp"}) as reply,
        ):
            assert reply.status == 201, await reply.text()
            self.answer = await reply.text()
            self.location = reply.headers["Location"]
        dtls = self.transceiver.receiver.transport
        handle = dtls._handle_rtp_data

        async def record(data: bytes, arrival_time_ms: int) -> None:
            self.seen.append(extension(data, 7))
            await handle(data, arrival_time_ms)

        dtls._handle_rtp_data = record
        await self.pc.setRemoteDescription(RTCSessionDescription(self.answer, "answer"))
        return self

    async def close(self) -> None:
        await self.pc.close()


async def patch(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.patch(url, data=json.dumps(body), headers={"Content-Type": "application/json"}) as r,
    ):
        text = await r.text()
        return r.status, (json.loads(text) if r.content_type == "application/json" else text)


async def test_a_viewer_that_offered_the_extension_is_told_and_follows_live_changes() -> None:
    server = Server(sl.load_config(port=0))
    server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        peer = await OfferingPeer(f"{server.url}whep/demo").connect()
        plain = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        try:
            assert f"a=extmap:7 {URI}" in peer.answer, "answered with the offered id"
            await until(lambda: len(peer.seen) >= 30, 20, "packets")
            assert set(peer.seen) == {b"\x00\x00\x00"}, "default 0: on every packet"

            status, body = await patch(f"{server.url}api/streams/demo", {"playout_delay": "200"})
            assert status == 200 and body["settings"]["playout_delay"] == "200"
            mark = len(peer.seen)
            await until(lambda: len(peer.seen) >= mark + 30, 20, "packets after the change")
            assert peer.seen[-1] == PlayoutDelay(200, 200).payload()

            async with aiohttp.ClientSession() as http, http.get(f"{server.url}api/streams") as r:
                listed = (await r.json())["streams"][0]["viewers"]
            ids = {v["playout_delay"]: v["id"] for v in listed}
            assert set(ids) == {"200", None}, "the aiortc viewer offered nothing, is told nothing"
            told = ids["200"]
            status, body = await patch(f"{server.url}api/streams/demo/viewers/{told}",
                                       {"playout_delay": "0-1000"})  # fmt: skip
            assert status == 200 and body["playout_delay"] == "0-1000"
            await server.update("demo", playout_delay="browser")
            mark = len(peer.seen)
            await until(lambda: len(peer.seen) >= mark + 30, 20, "packets after the override")
            assert peer.seen[-1] == PlayoutDelay(0, 1000).payload(), "the override wins"

            status, body = await patch(f"{server.url}api/streams/demo/viewers/{told}",
                                       {"playout_delay": None})  # fmt: skip
            assert status == 200 and body["playout_delay"] == "browser"
            mark = len(peer.seen)
            await until(lambda: len(peer.seen) >= mark + 30, 20, "packets after following again")
            assert peer.seen[-1] == PlayoutDelay(0, 10_000).payload()

            for bad in ({"playout_delay": "5"}, {"playout_delay": 200}):
                status, body = await patch(f"{server.url}api/streams/demo/viewers/{told}", bad)
                assert status == 400, body
            status, body = await patch(f"{server.url}api/streams/demo", {"playout_delay": "x"})
            assert status == 400 and "playout_delay" in body
            assert server.streams["demo"].fanout.playout_spec == "browser", "nothing changed"
            assert plain.received.frames > 0, "the viewer without the extension plays on"
        finally:
            await asyncio.gather(peer.close(), plain.close())
