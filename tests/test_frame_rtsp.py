"""RTSP frames stay I420, and nothing is decoded while no consumer needs pixels."""

from __future__ import annotations

import asyncio

import pytest

import streamlab as sl
from streamlab import framecode
from streamlab.frame import Frame
from streamlab.pipeline import Pipeline

pytestmark = pytest.mark.timeout(120)


class UnitSink:
    """A consumer that only needs each frame's clock and access unit (like passthrough)."""

    needs_pixels = False

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.arrived = asyncio.Event()

    def offer(self, frame: Frame) -> None:
        self.frames.append(frame)
        self.arrived.set()

    async def until(self, predicate, within_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        """Wait (frame by frame) until ``predicate()`` holds."""
        async with asyncio.timeout(within_s):
            while not predicate():
                self.arrived.clear()
                await self.arrived.wait()

    def close(self) -> None:
        pass


async def test_rtsp_frames_are_the_decoders_planes(camera: sl.TestCamera) -> None:
    async with Pipeline(camera.url) as pipeline:
        tap = pipeline.tap(maxsize=30)
        frames = [await asyncio.wait_for(tap.get(), 20) for _ in range(10)]
    assert all(f.has_i420 and not f.has_bgr for f in frames)
    assert frames[-1].i420().shape == (720, 640)
    assert framecode.read(frames[-1].gray()).seq >= 0  # the Y plane carries the code


async def test_nothing_is_decoded_until_a_consumer_needs_pixels(camera: sl.TestCamera) -> None:
    units = UnitSink()
    pipeline = Pipeline(camera.url)
    pipeline.add_sink(units)
    async with pipeline:
        await units.until(lambda: len(units.frames) >= 45)
        assert not pipeline.source.decode
        undecoded = list(units.frames)
        tap = pipeline.tap(maxsize=60)  # a consumer of pixels arrives
        assert pipeline.source.decode
        first = await asyncio.wait_for(tap.get(), 20)
        await units.until(lambda: units.frames[-1].seq > first.seq + 5)
        pipeline.remove_sink(tap)
        decoded_seqs = {f.seq for f in units.frames if f.has_pixels}
        await units.until(lambda: not units.frames[-1].has_pixels)  # off again
        units.needs_pixels = True  # a sink's needs change (a VP8 viewer joins delivery)
        await units.until(lambda: units.frames[-1].has_pixels)
        units.needs_pixels = False
        await pipeline.update(analyze=["motion"])  # analysis needs pixels too
        assert pipeline.source.decode
        await units.until(lambda: pipeline.engine.completed >= 3)
        warm_starts = pipeline.source.stats.warm_starts
    assert not any(f.has_pixels for f in undecoded)
    assert all(f.packet is not None and f.width == 640 and f.height == 480 for f in undecoded)
    seqs = [f.seq for f in units.frames]
    assert seqs == sorted(seqs) and len(seqs) >= 50  # the unit consumer never missed a beat
    # decoding resumed at once (mid-group from held packets, or at a keyframe): a clean picture
    assert first.packet is not None and (first.packet.keyframe or warm_starts >= 1)
    assert framecode.read(first.gray()).seq >= 0
    assert first.seq in decoded_seqs
    with pytest.raises(ValueError, match="not decoded"):
        undecoded[0].i420()
