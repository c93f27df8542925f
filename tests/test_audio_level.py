"""The camera's audio level measured on the server (dBov), in /api/streams, the LivePlot's
``audio`` series, and the ControlPanel's ``audio`` control.

The meter's own tests feed it what real encoders make (PyAV's G.711 and AAC encoders); the
served tests use the GStreamer test camera, whose tone is a sine at 0.3 of full scale:
20·log10(0.3/√2) = -13.5 dBov.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import aiohttp
import av
import numpy as np
import pytest

import streamlab as sl
import streamlab.lab as lab
from streamlab.delivery.audio import StreamAudio
from streamlab.delivery.audio_level import (
    LINEAR,
    SILENCE_DBOV,
    LevelMeter,
    alaw_to_linear,
    ulaw_to_linear,
)
from streamlab.delivery.clock import MediaClock
from streamlab.delivery.opus import OpusTranscoder
from streamlab.lab.panel import ControlPanel
from streamlab.sources.audio import AudioFormat, AudioUnit
from streamlab.testing import until
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server

TONE_DBOV = 20 * math.log10(0.3 / math.sqrt(2))  # the test camera's tone: -13.5


def sine(amplitude: float, rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * hz * t)


def g711_packets(codec: str, samples: np.ndarray, per_packet: int = 160) -> list[bytes]:
    """``samples`` (int16 values) encoded by FFmpeg's G.711 encoder, 20 ms a packet."""
    encoder: Any = av.CodecContext.create(codec, "w")
    encoder.sample_rate, encoder.layout, encoder.format = 8000, "mono", "s16"
    encoder.open()
    packets = []
    for start in range(0, len(samples), per_packet):
        chunk = samples[start : start + per_packet].astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = 8000
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def measured(codec: str, samples: np.ndarray) -> float | None:
    meter = LevelMeter()
    for data in g711_packets(codec, samples):
        meter.add_g711(data, codec)
    return meter.dbov()


# -- the meter -------------------------------------------------------------------------


@pytest.mark.parametrize(("codec", "decode"), [("pcm_alaw", alaw_to_linear),
                                               ("pcm_mulaw", ulaw_to_linear)])  # fmt: skip
def test_the_g711_tables_decode_as_ffmpeg_does(codec: str, decode: Callable[[int], int]) -> None:
    decoder: Any = av.CodecContext.create(codec, "r")
    decoder.sample_rate, decoder.layout = 8000, "mono"
    frames = decoder.decode(av.Packet(bytes(range(256))))
    ffmpeg = np.concatenate([f.to_ndarray().ravel() for f in frames])
    assert ffmpeg.tolist() == [decode(code) for code in range(256)]
    table = LINEAR[codec] * 32768
    loud = np.abs(ffmpeg) > 8  # A-law's two codes nearest zero (±8) count as silence
    assert np.array_equal(table[loud], ffmpeg[loud])
    assert not table[~loud].any()


@pytest.mark.parametrize("codec", ["pcm_alaw", "pcm_mulaw"])
def test_a_sine_reads_its_rms_in_dbov_and_silence_reads_minus_127(codec: str) -> None:
    full = measured(codec, sine(32000, 8000, 1.0))
    assert full is not None and abs(full - 20 * math.log10(32000 / 32768 / math.sqrt(2))) < 0.3
    assert -4.0 <= full <= -2.0, "a full-scale sine is -3 dBov"
    quiet = measured(codec, sine(32768 * 10 ** (-20 / 20), 8000, 1.0))  # peak -20 dBFS
    assert quiet is not None and abs(quiet - (-23.0)) < 0.5
    assert measured(codec, np.zeros(8000)) == SILENCE_DBOV


def test_the_level_is_of_the_last_half_second_and_none_when_no_packet_comes() -> None:
    meter = LevelMeter(stale_s=0.2)
    assert meter.dbov() is None, "nothing measured yet"
    for data in g711_packets("pcm_alaw", sine(32000, 8000, 1.0)):
        meter.add_g711(data, "pcm_alaw")
    assert meter.dbov() == pytest.approx(-3.2, abs=0.3)
    for data in g711_packets("pcm_alaw", np.zeros(4000)):  # half a second of silence
        meter.add_g711(data, "pcm_alaw")
    assert meter.dbov() == SILENCE_DBOV, "the loud second has left the window"
    for data in g711_packets("pcm_alaw", sine(32000, 8000, 0.25)):
        meter.add_g711(data, "pcm_alaw")
    assert meter.dbov() == pytest.approx(-6.2, abs=0.4), "half loud, half silent"
    time.sleep(0.3)
    assert meter.dbov() is None, "the camera stopped sending: no level, not silence"


def test_stream_audio_measures_g711_as_it_arrives_and_reports_it_in_stats() -> None:
    audio = StreamAudio("auto", MediaClock())
    assert audio.stats()["level_dbov"] is None
    pcma = AudioFormat("pcm_alaw", 8000, 1)
    for index, data in enumerate(g711_packets("pcm_alaw", sine(0.3 * 32768, 8000, 0.6))):
        audio._on_unit(AudioUnit(data, pcma, index * 160, Fraction(1, 8000), 1), 0.0)
    assert audio.stats()["level_dbov"] == pytest.approx(TONE_DBOV, abs=0.3)


class _Audio:
    """Stands in for StreamAudio beside a transcoder driven by hand."""

    def __init__(self) -> None:
        self.clock = MediaClock()
        self.level = LevelMeter()
        for k in range(12):  # the video's frames: the camera's clock is known, nothing held
            self.clock.ticks(time.time() + k / 30, k * 3000, Fraction(1, 90000))


def _aac(samples: np.ndarray) -> tuple[list[av.Packet], bytes | None]:
    encoder: Any = av.CodecContext.create("aac", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "fltp"
    encoder.time_base = Fraction(1, 48000)
    encoder.open()
    packets: list[av.Packet] = []
    for start in range(0, len(samples) - 1023, 1024):
        chunk = samples[start : start + 1024].astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
        packets += encoder.encode(frame)
    return packets, bytes(encoder.extradata) if encoder.extradata else None


def test_the_transcoder_measures_the_aac_it_decodes_but_not_g711_twice() -> None:
    packets, extradata = _aac(sine(0.5, 48000, 1.0))
    aac = AudioFormat("aac", 48000, 1, extradata)
    audio = _Audio()
    transcoder = OpusTranscoder(audio, loop=None)  # type: ignore[arg-type]
    transcoder._send = lambda data: None  # type: ignore[method-assign]
    for packet in packets:
        unit = AudioUnit(bytes(packet), aac, packet.pts, Fraction(1, 48000), 1)
        transcoder._transcode(unit, time.time())
    assert transcoder.decoded > 20
    assert audio.level.dbov() == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=1.0)

    g711 = _Audio()
    transcoder = OpusTranscoder(g711, loop=None)  # type: ignore[arg-type]
    transcoder._send = lambda data: None  # type: ignore[method-assign]
    pcma = AudioFormat("pcm_alaw", 8000, 1)
    for index, data in enumerate(g711_packets("pcm_alaw", sine(9000, 8000, 0.2))):
        transcoder._transcode(AudioUnit(data, pcma, index * 160, Fraction(1, 8000), 1), 0.0)
    assert transcoder.decoded > 0 and g711.level.blocks == 0, "G.711 is measured on arrival"


# -- served ----------------------------------------------------------------------------


def config(**extra: object) -> sl.StreamingConfig:
    return sl.load_config(port=0, reconnect_initial_s=0.05, reconnect_max_s=0.5, **extra)


async def api_audio(server: Server) -> dict[str, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}api/streams") as reply:
        body = await reply.json()
    return {s["name"]: s["delivery"]["audio"] for s in body["streams"]}


async def test_api_streams_shows_the_level_of_a_camera_with_audio_and_none_without(
    camera_factory: Callable[..., Any],
) -> None:
    pcma = camera_factory(audio="pcma", size=(320, 240), fps=15)
    aac = camera_factory(audio="aac", size=(320, 240), fps=15)
    mute = camera_factory(size=(320, 240), fps=15)
    server = Server(config())
    streams = {name: server.add_stream(camera.url, name=name)
               for name, camera in (("pcma", pcma), ("aac", aac), ("mute", mute))}  # fmt: skip
    await server.start()
    try:
        for stream in streams.values():
            await until(lambda s=stream: s.pipeline.source.stats.frames > 0, 20, "video")
        level = streams["pcma"].fanout.audio.level
        await until(lambda: level.dbov() is not None, 10, "a level from the PCMA camera")
        await asyncio.sleep(0.6)  # a full window
        audio = await api_audio(server)
        assert audio["pcma"]["level_dbov"] > -60
        assert audio["pcma"]["level_dbov"] == pytest.approx(TONE_DBOV, abs=1.5)
        assert audio["mute"]["level_dbov"] is None and audio["mute"]["source"] is None
        assert streams["aac"].fanout.audio.packets_in > 0
        assert audio["aac"]["level_dbov"] is None, "nothing decodes AAC without an Opus viewer"

        viewer = await WhepClient(f"{server.url}whep/aac", audio=("audio/opus",)).connect()
        meter = streams["aac"].fanout.audio.level
        await until(lambda: meter.dbov() is not None, 10, "a level from the transcoder")
        await asyncio.sleep(0.6)
        audio = await api_audio(server)
        assert audio["aac"]["transcoding"]
        assert audio["aac"]["level_dbov"] == pytest.approx(TONE_DBOV, abs=1.5)
        assert await viewer.close() == 200
    finally:
        await server.stop()


async def test_the_panel_audio_control_patches_the_stream_and_follows_the_api() -> None:
    server = Server(config())
    stream = server.add_stream("synthetic://?size=320x240&fps=15", name="cam")
    await server.start()
    try:
        panel = ControlPanel((server, "cam"))
        control = panel.controls["audio"]
        assert list(control.options) == ["auto", "opus", "off"]
        assert control.value == "auto"
        control.value = "off"  # as if picked in the dropdown
        await until(lambda: stream.fanout.audio.mode == "off", 5, "audio=off at the server")
        assert stream.settings()["audio"] == "off"
        assert "applied audio=off" in panel.status.value

        async with aiohttp.ClientSession() as http:
            reply = await http.patch(f"{server.url}api/streams/cam", json={"audio": "opus"})
            assert reply.status == 200
        await until(lambda: control.value == "opus", 5, "the panel showing the PATCHed value")
        assert stream.fanout.audio.mode == "opus"
        await panel.stop()
    finally:
        await server.stop()


async def test_liveplot_plots_the_camera_audio_level_in_dbov(
    camera_factory: Callable[..., Any],
) -> None:
    camera = camera_factory(audio="pcma", size=(320, 240), fps=15)
    served = lab.serve(camera.url, name="level")
    await served.ready()
    try:
        plot = lab.LivePlot(served, metrics=("fps", "audio"), hz=4)

        def levels() -> Any:
            data = plot.data()
            return data[(data.metric == "audio") & (data.series == "level")]["value"]

        await until(lambda: len(levels()) >= 4 and plot.renders >= 2, 30, "audio levels")
        assert levels().iloc[-1] == pytest.approx(TONE_DBOV, abs=1.5)
        assert (levels() <= 0).all()
        assert plot.render()[:4] == b"\x89PNG"
        await plot.stop()
    finally:
        await served.stop()
    with pytest.raises(ValueError, match="unknown metric"):
        lab.LivePlot(served, metrics=("audio_level",))


async def test_metrics_carry_each_streams_audio(camera_factory: Callable[..., Any]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    camera = camera_factory(audio="pcma", size=(320, 240), fps=15)
    server = Server(config())
    server.add_stream(camera.url, name="cam")
    server.add_stream("synthetic://?size=320x240&fps=10", name="quiet")
    await server.start()
    try:
        viewer = await WhepClient(f"{server.url}whep/cam", audio=("audio/PCMA",)).connect()
        await until(lambda: viewer.received.audio_frames >= 30, 20, "audio at the viewer")
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}metrics") as reply:
            text = await reply.text()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip

        def value(name: str, **labels: str) -> float | None:
            return samples.get((name, tuple(sorted(labels.items()))))

        assert (value("streamlab_audio_packets_total", stream="cam") or 0) >= 30
        assert (value("streamlab_audio_passed_packets_total", stream="cam") or 0) >= 30
        assert value("streamlab_audio_level_dbov", stream="cam") == pytest.approx(TONE_DBOV, abs=1.5)
        assert value("streamlab_audio_viewers", stream="cam", codec="audio/PCMA") == 1
        assert value("streamlab_audio_packets_total", stream="quiet") == 0
        assert value("streamlab_audio_level_dbov", stream="quiet") is None, "no level, no gauge"
        await viewer.close()
    finally:
        await server.stop()


async def test_the_panel_lip_sync_checkbox_sets_the_stream() -> None:
    server = Server(config())
    stream = server.add_stream("synthetic://?size=320x240&fps=15", name="cam")
    await server.start()
    try:
        panel = ControlPanel((server, "cam"))
        control = panel.controls["lip_sync"]
        assert control.value is True and stream.fanout.lip_sync
        control.value = False
        await until(lambda: not stream.fanout.lip_sync, 5, "lip_sync=false at the server")
        assert stream.settings()["lip_sync"] is False
        await panel.stop()
    finally:
        await server.stop()
