"""The camera's audio to aiortc viewers, with real parts: the GStreamer camera's PCMA or AAC
microphone, the RTSP source, the server and an aiortc WHEP viewer that decodes it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import streamlab as sl
from streamlab.camera.launcher import TestCamera
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server

BOTH = ("audio/PCMA", "audio/opus")


def config(**extra: object) -> sl.StreamingConfig:
    return sl.load_config(port=0, reconnect_initial_s=0.05, reconnect_max_s=0.5, **extra)


async def until(check: Callable[[], bool], within_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"no {what} within {within_s} s")
        await asyncio.sleep(0.05)


async def serve(camera: TestCamera, **settings: object) -> tuple[Server, object]:
    server = Server(config(**settings))
    stream = server.add_stream(camera.url, name="cam")
    await server.start()
    source = stream.pipeline.source
    await until(lambda: source.stats.frames > 0, 20, "video from the camera")
    return server, stream


@pytest.fixture
def pcma_camera():  # type: ignore[no-untyped-def]
    with TestCamera(audio="pcma", size=(320, 240), fps=15) as camera:
        yield camera


async def test_pcma_passes_through_untouched_and_survives_a_restart(pcma_camera) -> None:  # type: ignore[no-untyped-def]
    server, stream = await serve(pcma_camera)
    try:
        assert stream.pipeline.stats()["audio"] == {"codec": "pcm_alaw", "rate": 8000,
                                                    "channels": 1}  # fmt: skip
        client = await WhepClient(f"{server.url}whep/cam", audio=BOTH).connect()
        await client.wait_frames(10)
        await until(lambda: client.received.audio_frames >= 50, 20, "audio frames")
        assert client.audio_codec == "audio/PCMA"
        assert client.received.audio_peak > 1000, "a tone, not silence"
        audio = stream.fanout.stats()["audio"]
        assert audio["viewers"] == {"audio/PCMA": 1}
        assert not audio["transcoding"] and audio["opus_packets"] == 0, "nothing encoded"
        assert audio["packets_passed"] >= 50

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pcma_camera.restart)
        before = client.received.audio_frames
        await until(lambda: client.received.audio_frames >= before + 50, 30,
                    "audio after a camera restart")  # fmt: skip
        assert stream.pipeline.source.stats.reconnects >= 1
        assert await client.close() == 200
        assert stream.fanout.stats()["audio"]["viewers"] == {}
    finally:
        await server.stop()


async def test_aac_is_transcoded_to_opus_once_for_all_viewers() -> None:
    with TestCamera(audio="aac", size=(320, 240), fps=15) as camera:
        server, stream = await serve(camera)
        try:
            clients = [await WhepClient(f"{server.url}whep/cam", audio=BOTH).connect()
                       for _ in range(2)]  # fmt: skip
            await until(lambda: all(c.received.audio_frames >= 50 for c in clients), 20,
                        "Opus audio at both viewers")  # fmt: skip
            assert {c.audio_codec for c in clients} == {"audio/opus"}
            assert all(c.received.audio_peak > 1000 for c in clients)
            audio = stream.fanout.stats()["audio"]
            assert audio["source"]["codec"] == "aac"
            assert audio["transcoding"] and audio["viewers"] == {"audio/opus": 2}
            transcoder = stream.fanout.audio.transcoder
            # one encoder for both: each packet it made went to both viewers
            assert transcoder.encoded >= 50 and transcoder.errors == 0
            for client in clients:
                assert await client.close() == 200
            assert stream.fanout.audio.transcoder is None, "stopped with the last viewer"
        finally:
            await server.stop()


async def test_a_camera_without_audio_plays_without_an_audio_track(camera: TestCamera) -> None:
    server, stream = await serve(camera)
    try:
        client = await WhepClient(f"{server.url}whep/cam", audio=BOTH).connect()
        await client.wait_frames(30)
        assert client.received.audio_frames == 0
        assert stream.fanout.stats()["audio"]["source"] is None
        assert stream.pipeline.stats()["audio"] is None
        assert await client.close() == 200
    finally:
        await server.stop()


async def test_audio_off_sends_no_track_and_an_offer_without_audio_plays(pcma_camera) -> None:  # type: ignore[no-untyped-def]
    server, stream = await serve(pcma_camera, audio="off")
    try:
        muted = await WhepClient(f"{server.url}whep/cam", audio=BOTH).connect()
        await muted.wait_frames(20)
        assert muted.received.audio_frames == 0
        assert stream.fanout.stats()["audio"]["viewers"] == {}
        assert await muted.close() == 200
        await stream.pipeline.update(audio="auto")  # live: viewers who join from now hear it
        await until(lambda: stream.fanout.audio.mode == "auto", 5, "the audio setting")
        video_only = await WhepClient(f"{server.url}whep/cam").connect()  # offers no audio
        await video_only.wait_frames(20)
        assert stream.fanout.stats()["audio"]["viewers"] == {}
        assert await video_only.close() == 200
    finally:
        await server.stop()


@pytest.mark.parametrize("wait_s", [5.0, 0.0], ids=["waits", "no-wait"])
async def test_a_viewer_who_offers_before_the_camera_first_connects_still_gets_audio(
    pcma_camera, wait_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """WHEP cannot add a track later: the answer waits for the camera's first connection
    to know whether it has audio (``no-wait`` shows what happens without that wait)."""
    from streamlab.delivery import audio

    monkeypatch.setattr(audio, "AUDIO_KNOWN_WITHIN_S", wait_s)
    monkeypatch.setattr(audio.StreamAudio.wait_known, "__defaults__", (wait_s,))
    server = Server(config())
    stream = server.add_stream(pcma_camera.url, name="cam")
    await server.start()
    try:
        assert not stream.pipeline.source.audio_known(), "the offer comes before the camera"
        client = await WhepClient(f"{server.url}whep/cam", audio=BOTH).connect()
        await client.wait_frames(5)
        if wait_s:
            await until(lambda: client.received.audio_frames >= 20, 20, "audio frames")
            assert client.audio_codec == "audio/PCMA"
        else:
            await asyncio.sleep(1.0)
            assert client.received.audio_frames == 0, "answered without an audio track"
        await client.close()
    finally:
        await server.stop()


async def test_the_emulated_link_carries_the_audio_with_the_video(pcma_camera) -> None:  # type: ignore[no-untyped-def]
    from collections import Counter

    server, stream = await serve(pcma_camera, network="delay=40ms,jitter=10ms")
    try:
        client = await WhepClient(f"{server.url}whep/cam", audio=BOTH).connect()
        await until(lambda: client.received.audio_frames >= 20, 20, "audio through the link")
        viewer = next(iter(stream.fanout.viewers.values()))
        assert viewer.link is not None
        seen: Counter[int] = Counter()
        before = viewer.link.stats.delivered
        viewer.link.observer = lambda data: seen.update([data[1] & 0x7F])  # RTP payload type
        await asyncio.sleep(1.0)
        assert seen[8] >= 30, f"PCMA packets (type 8) on the link: {dict(seen)}"
        assert viewer.link.stats.delivered - before >= seen[8], "and delivered by it"
        await client.close()
    finally:
        await server.stop()


async def test_pcmu_passes_through_to_a_viewer_that_offered_it_and_opus_to_one_that_did_not() -> None:
    with TestCamera(audio="pcmu", size=(320, 240), fps=15) as camera:
        server, stream = await serve(camera)
        try:
            mulaw = await WhepClient(f"{server.url}whep/cam",
                                     audio=("audio/PCMU", "audio/opus")).connect()  # fmt: skip
            opus = await WhepClient(f"{server.url}whep/cam", audio=("audio/opus",)).connect()
            await until(lambda: min(mulaw.received.audio_frames, opus.received.audio_frames)
                        >= 30, 20, "audio at both viewers")  # fmt: skip
            assert (mulaw.audio_codec, opus.audio_codec) == ("audio/PCMU", "audio/opus")
            assert mulaw.received.audio_peak > 1000 and opus.received.audio_peak > 1000
            audio = stream.fanout.stats()["audio"]
            assert audio["source"]["codec"] == "pcm_mulaw"
            assert audio["viewers"] == {"audio/PCMU": 1, "audio/opus": 1}
            assert audio["packets_passed"] >= 30 and audio["opus_packets"] >= 30
            for client in (mulaw, opus):
                assert await client.close() == 200
        finally:
            await server.stop()
