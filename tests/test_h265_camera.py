"""An H.265 camera: the test camera sends x265 over RTP (RFC 7798), the RTSP source decodes
it, analysis and overlay run, viewers get a transcode encoded once, with the reason in
``/api/streams`` and one log line, and a viewer that offered H.265 gets the camera's own
units (the project's RFC 7798 packetiser and depacketiser). Real camera, real aiortc peers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import structlog

import streamlab as sl
from streamlab.delivery import passthrough
from streamlab.frame import EncodedUnit
from streamlab.testing import until
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server


def test_h265_camera_options_are_checked() -> None:
    with pytest.raises(sl.ConfigError, match="codec"):
        sl.TestCamera(codec="vp8")
    with pytest.raises(sl.ConfigError, match=r"H\.264 only"):
        sl.TestCamera(codec="h265", profile="main")
    assert "--codec" in (command := sl.TestCamera(codec="h265")._command())
    assert command[command.index("--codec") + 1] == "h265"


def test_the_reason_is_logged_once_per_camera_codec() -> None:
    delivery: Any = SimpleNamespace(stream="cam", camera_codec=None)
    with structlog.testing.capture_logs() as logs:
        passthrough.camera_codec_seen(delivery, "h264")
        assert passthrough.camera_fits(delivery) and passthrough.transcode_reason(delivery) is None
        for _ in range(3):
            passthrough.camera_codec_seen(delivery, "hevc")
    said = [e for e in logs if e["event"] == "camera_transcoded"]
    assert len(said) == 1 and said[0]["camera_codec"] == "hevc"
    assert not passthrough.camera_fits(delivery)
    assert "H.265" in (passthrough.transcode_reason(delivery) or "")


def test_h265_units_go_only_to_viewers_that_offered_h265() -> None:
    h264_viewer: Any = SimpleNamespace(codec=sl.codecs.create("passthrough"), bridging=False)
    delivery: Any = SimpleNamespace(units_forwarded=0, viewers={"a": h264_viewer},
                                    camera_codec="hevc", preference=h264_viewer.codec)  # fmt: skip
    passthrough.pass_through(delivery, EncodedUnit(b"\x00\x00\x01\x40", "hevc", True, 0, None), 0)
    assert delivery.units_forwarded == 0, "no H.265 unit for an H.264 viewer"
    assert passthrough.key_of(delivery, h264_viewer, "source", 0).codec == "h264"
    assert passthrough.codec_for(delivery, {"video/h264"}) is None
    chosen = passthrough.codec_for(delivery, {"video/h264", "video/h265"})
    assert chosen is not None and chosen.mime == "video/H265" and chosen.passthrough
    h265_viewer: Any = SimpleNamespace(codec=chosen, bridging=True)
    assert passthrough.key_of(delivery, h265_viewer, "320x180", 3) == passthrough.PASSTHROUGH
    delivery.camera_codec = "h264"
    assert passthrough.codec_for(delivery, {"video/h265"}) is None, "only an H.265 camera's"


async def streams(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}api/streams") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


@pytest.mark.timeout(150)
async def test_an_h265_camera_plays_through_a_transcode(
    camera_factory: Callable[..., sl.TestCamera],
) -> None:
    camera = camera_factory(codec="h265", size=(640, 480), fps=30)
    config = sl.load_config(port=0, codec="passthrough", analyze=["motion"], overlay=True)
    server = Server(config)
    server.add_stream(camera.url, name="cam")
    async with asyncio.timeout(120), server:
        source = server.streams["cam"].pipeline.source
        delivery = server.streams["cam"].delivery
        await until(lambda: source.stats.frames >= 10, 30, "frames",
                    lambda: f"source {source.stats}, state {source.state.state}")  # fmt: skip
        assert source.stats.codec == "hevc"
        h264 = WhepClient(f"{server.url}whep/cam", codecs=("video/H264",))
        vp8 = WhepClient(f"{server.url}whep/cam", codecs=("video/VP8",))
        try:
            await h264.connect(read_codes=True)
            await vp8.connect(read_codes=True)
            await asyncio.gather(h264.wait_frames(45, within_s=30),
                                 vp8.wait_frames(45, within_s=30))  # fmt: skip
            assert (h264.codec, vp8.codec) == ("video/H264", "video/VP8")
            for client in (h264, vp8):
                assert client.received.codes >= 30, "clean pictures: the frame codes read"
                assert (640, 480) in client.received.sizes
            analysis = [m for m in h264.received.messages if m.get("type") == "analysis"]
            assert analysis, "analysis runs on the decoded H.265 frames"
            info = next(s for s in (await streams(server.url))["streams"] if s["name"] == "cam")
            stats = info["delivery"]
            assert stats["camera_codec"] == "hevc"
            assert "H.265" in stats["transcode_reason"]
            keys = {e["key"] for e in stats["encoders"]}
            assert {"h264/source", "vp8/source"} <= keys, keys
            assert stats["passthrough_units"] == 0, "no H.265 unit reaches a viewer"
            assert not delivery._passthrough_wanted or stats["passthrough_units"] == 0
            assert info["settings"]["overlay"] is True
        finally:
            await h264.close()
            await vp8.close()


@pytest.mark.timeout(150)
async def test_a_viewer_that_offered_h265_gets_the_cameras_own_units(
    camera_factory: Callable[..., sl.TestCamera],
) -> None:
    camera = camera_factory(codec="h265", size=(640, 480), fps=30)
    server = Server(sl.load_config(port=0, codec="passthrough", analyze=["motion"]))
    server.add_stream(camera.url, name="cam")
    async with asyncio.timeout(120), server:
        source = server.streams["cam"].pipeline.source
        delivery = server.streams["cam"].delivery
        await until(lambda: delivery.camera_codec == "hevc", 30, "the camera's codec",
                    lambda: f"source {source.stats}, state {source.state.state}")  # fmt: skip
        client = WhepClient(f"{server.url}whep/cam", codecs=("video/H265",))
        try:
            await client.connect(read_codes=True)
            await client.wait_frames(45, within_s=30)
            assert client.codec == "video/H265"
            assert client.received.codes >= 30, "clean pictures: the frame codes read"
            assert (640, 480) in client.received.sizes
            stats = delivery.stats()
            assert stats["passthrough_units"] >= 45
            assert stats["frames_encoded"] == 0 and not stats["encoders"], "nothing transcoded"
            analysis = [m for m in client.received.messages if m.get("type") == "analysis"]
            assert analysis, "the analysis still reaches the viewer, as metadata"
        finally:
            await client.close()
