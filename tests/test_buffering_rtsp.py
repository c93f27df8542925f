"""Buffering strategies under a slow consumer of a real RTSP stream."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import streamlab as sl
from streamlab.camera.launcher import TestCamera
from streamlab.sources.rtsp import RtspSource


async def consume_slowly(
    camera: TestCamera, spec: str, count: int = 12
) -> tuple[list[int], sl.RtspSource]:  # type: ignore[name-defined]
    source = RtspSource(camera.url, config=sl.load_config(reconnect_initial_s=0.05))
    subscription = source.subscribe(spec)
    source.start()
    seqs = []
    for _ in range(count):
        frame = await asyncio.wait_for(subscription.get(), 30)
        seqs.append(frame.seq)
        await asyncio.sleep(0.1)  # a consumer at 10 fps under a 30 fps camera
    await asyncio.get_running_loop().run_in_executor(None, source.stop)
    return seqs, source, subscription.stats


@pytest.mark.parametrize("spec", ["latest", "drop_oldest:4"])
async def test_leaky_downstream_keeps_up_with_the_newest(camera: TestCamera, spec: str) -> None:
    seqs, _source, stats = await consume_slowly(camera, spec)
    gaps = [b - a for a, b in itertools.pairwise(seqs)]
    assert all(g >= 1 for g in gaps)
    assert sum(gaps) / len(gaps) > 1.3  # frames were skipped to stay current
    assert stats.dropped_full > 0
    assert stats.dropped_stale == 0
    assert stats.put == stats.delivered + stats.dropped + len_left(stats)


def len_left(stats: sl.strategies.buffering.BufferStats) -> int:  # type: ignore[attr-defined]
    return stats.put - stats.delivered - stats.dropped


async def test_drop_newest_keeps_the_oldest(camera: TestCamera) -> None:
    seqs, _source, stats = await consume_slowly(camera, "drop_newest:4")
    assert seqs[:4] == list(range(seqs[0], seqs[0] + 4))  # the first four were kept in order
    gaps = [b - a for a, b in itertools.pairwise(seqs)]
    assert all(g >= 1 for g in gaps)
    assert max(gaps) > 1  # later, what came while the buffer was full was dropped
    assert stats.dropped_full > 0


async def test_block_is_lossless(camera: TestCamera) -> None:
    seqs, _source, stats = await consume_slowly(camera, "block:4")
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert stats.dropped == 0
    assert stats.blocked_s > 0


async def test_max_age_drops_stale_frames(camera: TestCamera) -> None:
    seqs, _source, stats = await consume_slowly(camera, "max_age:50")
    assert stats.dropped_stale > 0
    assert all(b > a for a, b in itertools.pairwise(seqs))
