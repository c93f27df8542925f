"""A passthrough viewer joins a long-GOP camera at once (``passthrough_join``), and a paused
decoder resumes mid-group from the packets the source held; real camera, real aiortc peers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import av
import pytest

import streamlab as sl
from streamlab import framecode
from streamlab.delivery.gop import GopCache
from streamlab.testing import until
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server

GOP = 180  # a keyframe every 6 s at 30 fps: a viewer joining 2 s in has 4 s to show pictures


def unit(pts: int, size: int = 100) -> av.Packet:
    packet = av.Packet(bytes(size))
    packet.pts = pts
    return packet


def test_gop_cache_keeps_the_group_since_the_last_keyframe_and_stamps_a_tight_burst() -> None:
    cache = GopCache(max_units=5, max_bytes=10_000)
    cache.add(unit(0), keyframe=False)
    assert not cache.ready, "a group starts at a keyframe"
    for index in range(4):
        cache.add(unit(3000 * (index + 1)), keyframe=index == 0)
    assert cache.ready and len(cache.units) == 4
    burst = cache.join_burst()
    stamps = [int(p.pts or 0) for p in burst]
    assert stamps == [11997, 11998, 11999, 12000], "one tick apart, ending on the live edge"
    assert [bytes(p) for p in burst] == [bytes(p) for p in cache.units]
    assert cache.units[0].pts == 3000, "the cache keeps its own timestamps"
    assert [int(p.pts or 0) for p in cache.join_burst(after_ticks=12000)][-1] > 12000
    for index in range(2):
        cache.add(unit(15000 + index), keyframe=False)
    assert not cache.ready and cache.overflowed, "too long a group is dropped, not truncated"
    cache.add(unit(20000), keyframe=False)
    assert not cache.ready, "and stays dropped until the next keyframe"
    cache.add(unit(21000), keyframe=True)
    assert cache.ready and len(cache.units) == 1
    cache.add(unit(22000, size=20_000), keyframe=False)
    assert not cache.ready, "the byte bound holds as well"


class UnitSink:
    """Needs no pixels (like passthrough delivery): lets the source stop decoding."""

    needs_pixels = False

    def __init__(self) -> None:
        self.frames = 0

    def offer(self, frame: sl.Frame) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


async def test_decoding_resumes_mid_group_from_the_held_packets(
    camera_factory: Callable[..., sl.TestCamera],
) -> None:
    camera = camera_factory(gop=GOP)
    units = UnitSink()
    pipeline = sl.Pipeline(camera.url)
    pipeline.add_sink(units)
    async with pipeline:
        await until(lambda: units.frames >= 45, 20, "frames")  # 1.5 s into the 6 s group
        assert not pipeline.source.decode
        tap = pipeline.tap(maxsize=30)
        first = await asyncio.wait_for(tap.get(), 5)
        stats = pipeline.source.stats
    assert first.packet is not None and not first.packet.keyframe, "mid-group, not at a keyframe"
    assert stats.warm_starts == 1
    assert framecode.read(first.gray()).seq >= 0, "a clean picture: its references were decoded"


async def joined(server: Server, client: WhepClient) -> tuple[int, int]:
    """Connect ``client``; the camera keyframes the delivery had seen before and after its
    first ten decoded pictures."""
    delivery = server.streams["cam"].delivery
    before = delivery.passthrough.keyframes
    await client.connect(read_codes=True)
    await client.wait_frames(10, within_s=15)
    return before, delivery.passthrough.keyframes


@pytest.mark.timeout(130)
@pytest.mark.parametrize("mode", ["gop", "bridge", "wait"])
async def test_a_passthrough_viewer_joins_between_the_cameras_keyframes(
    camera_factory: Callable[..., sl.TestCamera], mode: str
) -> None:
    camera = camera_factory(gop=GOP)
    config = sl.load_config(port=0, codec="passthrough", passthrough_join=mode)
    server = Server(config)
    server.add_stream(camera.url, name="cam")
    # Every wait below is bounded; on a slow machine they may add up, so the whole test is
    # bounded inside the loop too: a timeout then still leaves through ``async with``.
    async with asyncio.timeout(100), server:
        delivery = server.streams["cam"].delivery
        source = server.streams["cam"].pipeline.source
        await until(lambda: source.stats.frames >= 60, 20, "frames",  # 2 s into the group
                    lambda: f"source {source.stats}, state {source.state.state}, camera sent "
                            f"{camera.frames_sent} frames")  # fmt: skip
        client = WhepClient(f"{server.url}whep/cam", codecs=("video/H264",))
        try:
            before, after = await joined(server, client)
            assert client.received.codes >= 10, "clean pictures: every frame code reads"
            if mode == "wait":
                assert after > before, "without help the viewer waits for the camera's keyframe"
                return
            assert after == before, "pictures came before the camera's next keyframe"
            stats = delivery.stats()
            if mode == "gop":
                assert stats["gop_cache"]["replays"] == 1
                assert stats["gop_cache"]["replayed_units"] >= 60
                assert stats["frames_encoded"] == 0, "a replay transcodes nothing"
                return
            assert stats["bridges"] == 1
            assert source.stats.warm_starts >= 1
            viewer = next(iter(delivery.viewers.values()))
            assert viewer.bridging and "h264/source" in [e["key"] for e in stats["encoders"]]
            await until(lambda: not viewer.bridging, 15, "the bridge ends at a camera keyframe")
            units = delivery.units_forwarded
            received = client.received.frames
            await client.wait_frames(received + 30, within_s=10)
            await asyncio.sleep(0.5)
            assert not delivery.encoders, "the transcode stops with the bridge"
            assert delivery.units_forwarded > units
            assert not source.decode, "and so does decoding"
            gaps = [b - a for a, b in itertools.pairwise(client.received.arrivals)]
            assert max(gaps) < 1.0, "no freeze at the switch to the camera's own units"
        finally:
            await client.close()
