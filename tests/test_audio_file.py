"""A video file's audio track, read beside its video like a camera's: the units, their
pacing, a file without audio, loops, and an aiortc viewer hearing an AAC file as Opus.

The media is made here with PyAV in a temporary directory: H.264 with AAC (MP4, in 0.8 s
fragments, so the file holds a stretch of video before the audio of that time), with
A-law (MOV: FFmpeg's Matroska muxer takes no G.711), with Opus (MKV), and video only.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

import streamlab as sl
from streamlab.clock import now
from streamlab.sources.audio import AudioUnit
from streamlab.sources.file import FileSource
from streamlab.testing import source_threads
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server

FPS = 25
SECONDS = 2.0
SIZE = (160, 120)
BOTH = ("audio/PCMA", "audio/opus")


@dataclass(frozen=True)
class Track:
    encoder: str  # PyAV encoder name
    codec: str  # what the source reports
    rate: int
    sample_format: str
    chunk: int  # samples per encoded frame


AAC = Track("aac", "aac", 48000, "fltp", 1024)
ALAW = Track("pcm_alaw", "pcm_alaw", 8000, "s16", 160)
OPUS = Track("libopus", "opus", 48000, "s16", 960)


def make_clip(
    path: Path, track: Track | None, seconds: float = SECONDS, options: dict[str, str] | None = None
) -> Path:
    """``seconds`` of H.264 (a grey ramp) and, with ``track``, a 440 Hz tone, muxed in
    time order."""
    with av.open(str(path), "w", options=options or {}) as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height = SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(FPS * 4 // 5)}
        media = [(i / FPS, 1, i) for i in range(round(seconds * FPS))]  # (time, video?, n)
        sound: Any = None
        if track is not None:
            sound = out.add_stream(track.encoder, rate=track.rate)
            sound.layout, sound.format = "mono", track.sample_format
            starts = range(0, int(seconds * track.rate) - track.chunk + 1, track.chunk)
            media += [(start / track.rate, 0, start) for start in starts]
        for _, is_video, index in sorted(media):
            if is_video:
                image = np.full((SIZE[1], SIZE[0], 3), index * 5 % 256, np.uint8)
                still = av.VideoFrame.from_ndarray(image, format="bgr24")
                still.pts, still.time_base = index, Fraction(1, FPS)
                out.mux(video.encode(still))
                continue
            assert track is not None
            times = np.arange(index, index + track.chunk) / track.rate
            tone = 0.5 * np.sin(2 * np.pi * 440 * times)
            if track.sample_format == "s16":
                samples = (tone * 32767).astype(np.int16)
            else:
                samples = tone.astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(samples[None, :], format=track.sample_format,
                                               layout="mono")  # fmt: skip
            chunk.sample_rate, chunk.pts = track.rate, index
            chunk.time_base = Fraction(1, track.rate)
            out.mux(sound.encode(chunk))
        out.mux(video.encode())
        if sound is not None:
            out.mux(sound.encode())
    return path


FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    return {
        "aac": make_clip(folder / "aac.mp4", AAC, options=FRAGMENTED),
        "pcm_alaw": make_clip(folder / "alaw.mov", ALAW),
        "opus": make_clip(folder / "opus.mkv", OPUS),
        "none": make_clip(folder / "silent.mp4", None),
        "short_aac": make_clip(folder / "short.mp4", AAC, seconds=1.2),
    }


class Listened:
    """The audio units a source hands on, with when they arrived."""

    def __init__(self, source: sl.Source) -> None:
        self.units: list[tuple[AudioUnit, float]] = []
        self.changed = threading.Event()
        source.add_audio_listener(self.add)

    def add(self, unit: AudioUnit, received_at: float) -> None:
        self.units.append((unit, received_at))
        self.changed.set()


async def play(source: FileSource) -> list[sl.Frame]:
    """Every frame of one play of ``source`` (which then ends on its own)."""
    subscription = source.subscribe("block:16")
    source.start()
    frames = [frame async for frame in subscription]
    await asyncio.get_running_loop().run_in_executor(None, source.stop)
    return frames


def seconds(unit: AudioUnit) -> float:
    assert unit.pts is not None
    return float(unit.pts * unit.time_base)


@pytest.mark.parametrize(
    ("kind", "track"), [("aac", AAC), ("pcm_alaw", ALAW), ("opus", OPUS)]
)  # fmt: skip
async def test_a_file_hands_on_its_audio_packets_with_the_track_format(
    media: dict[str, Path], kind: str, track: Track
) -> None:
    source = FileSource(media[kind], realtime=False)
    assert source.stats.audio is not None, "known before it plays (probe, negotiation)"
    assert (source.stats.audio.codec, source.stats.audio.rate, source.stats.audio.channels) == (
        track.codec, track.rate, 1)  # fmt: skip
    heard = Listened(source)
    frames = await play(source)
    assert len(frames) == SECONDS * FPS, "the video plays as before"
    units = [unit for unit, _ in heard.units]
    assert units and all(unit.format == source.stats.audio for unit in units)
    assert all(unit.connection == 1 for unit in units)
    assert source.stats.audio_packets == len(units)
    times = [seconds(unit) for unit in units]
    assert all(b > a for a, b in itertools.pairwise(times)), "pts increase"
    assert times[-1] - times[0] == pytest.approx(SECONDS, abs=0.15)
    if track is ALAW:  # one byte a sample, however the container groups them
        assert sum(len(unit.data) for unit in units) == pytest.approx(SECONDS * track.rate,
                                                                      rel=0.05)  # fmt: skip
    else:  # one encoded frame a packet
        assert len(units) == pytest.approx(SECONDS * track.rate / track.chunk, rel=0.1)
    if track is AAC:
        assert units[0].format.extradata, "the AudioSpecificConfig for the decoder"


async def test_audio_goes_out_at_its_own_pts_and_never_waits_for_the_video(
    media: dict[str, Path],
) -> None:
    """The MP4 holds 0.8 s of video before the audio of that time: each audio packet must
    still go out at its own time, as must each picture."""
    with av.open(str(media["aac"])) as container:
        order = [p.stream.type for p in container.demux() if p.size][:12]
    assert order[:10] == ["video"] * 10, "the file is laid out as the test needs"
    source = FileSource(media["aac"], realtime=True)
    heard = Listened(source)
    subscription = source.subscribe("block:64")
    source.start()
    pictures = [(frame, now()) async for frame in subscription]
    await asyncio.get_running_loop().run_in_executor(None, source.stop)
    assert len(pictures) == SECONDS * FPS
    origin = heard.units[0][1] - seconds(heard.units[0][0])
    late = [at - origin - seconds(unit) for unit, at in heard.units]
    assert min(late) > -0.03 and max(late) < 0.25, f"audio off its pts: {min(late):.3f} .. "\
        f"{max(late):.3f} s"  # fmt: skip
    first_picture = pictures[0][1] - float(pictures[0][0].pts * pictures[0][0].time_base)
    assert abs(first_picture - origin) < 0.25, "audio and pictures on one timeline"
    video_late = [at - origin - float(f.pts * f.time_base) for f, at in pictures]
    assert max(video_late) < 0.25
    assert heard.units[-1][1] - heard.units[0][1] > SECONDS - 0.3, "paced, not all at once"


async def test_a_file_without_audio_plays_and_reports_none(media: dict[str, Path]) -> None:
    source = FileSource(media["none"], realtime=False)
    heard = Listened(source)
    frames = await play(source)
    assert source.stats.audio is None
    assert len(frames) == SECONDS * FPS
    assert heard.units == [] and source.stats.audio_packets == 0
    assert source.state.state is sl.StreamState.STOPPED and not source.stats.errors


async def test_each_loop_is_a_new_audio_connection(media: dict[str, Path]) -> None:
    """A loop starts the pts over: a new connection tells the delivery to re-anchor."""
    source = FileSource(media["short_aac"], realtime=False, loop=True)
    heard = Listened(source)
    source.start()
    loop = asyncio.get_running_loop()

    def third_play() -> bool:
        while heard.changed.wait(10):
            heard.changed.clear()
            if heard.units[-1][0].connection >= 3:
                return True
        return False

    try:
        assert await loop.run_in_executor(None, third_play), "no third play within 10 s"
    finally:
        await loop.run_in_executor(None, source.stop)
    units = [unit for unit, _ in heard.units]
    connections = [unit.connection for unit in units]
    assert connections == sorted(connections) and {1, 2, 3} <= set(connections)
    assert source.stats.connects >= 3
    plays = [[seconds(u) for u in units if u.connection == n] for n in (1, 2)]
    assert len(plays[0]) == len(plays[1]) and plays[0] == plays[1], "the same audio each time"
    assert all(b > a for a, b in itertools.pairwise(plays[0]))
    assert not source_threads()


async def until(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {what} within {within_s} s")
        await asyncio.sleep(0.05)


async def test_an_aac_file_reaches_an_aiortc_viewer_as_opus_across_loops(
    media: dict[str, Path],
) -> None:
    config = sl.load_config(port=0)
    server = Server(config)
    source = FileSource(media["short_aac"], loop=True)
    stream = server.add_stream(sl.Pipeline(source, config=config, name="clip"))
    await server.start()
    try:
        assert stream.pipeline.stats()["audio"] == {"codec": "aac", "rate": 48000, "channels": 1}
        client = await WhepClient(f"{server.url}whep/clip", audio=BOTH).connect()
        await until(lambda: client.received.audio_frames >= 25, 10, "Opus audio")
        assert client.audio_codec == "audio/opus"
        assert client.received.audio_peak > 1000, "the tone, not silence"
        plays = source.stats.connects
        before = client.received.audio_frames
        await until(lambda: source.stats.connects > plays and
                    client.received.audio_frames >= before + 25, 10,
                    "audio after the file started over")  # fmt: skip
        audio = stream.fanout.stats()["audio"]
        assert audio["transcoding"] and audio["viewers"] == {"audio/opus": 1}
        transcoder = stream.fanout.audio.transcoder
        assert transcoder.errors == 0 and transcoder.timeline.anchors >= 2, "re-anchored"
        assert await client.close() == 200
    finally:
        await server.stop()
