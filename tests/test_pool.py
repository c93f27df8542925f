"""Source pool: one connection per URL, a buffer per consumer, linger after the last."""

from __future__ import annotations

import asyncio

import streamlab as sl
from streamlab.camera.launcher import TestCamera
from streamlab.sources.pool import SourcePool
from streamlab.testing import source_threads, take


async def test_two_consumers_share_one_rtsp_connection(camera: TestCamera) -> None:
    pool = SourcePool(linger_s=0.3)
    first = pool.subscribe(camera.url, "drop_oldest:4")
    second = pool.subscribe(camera.url, "latest")
    try:
        a = await take(first, 10)
        b = await take(second, 3)
        source = pool.source(camera.url)
        assert source is not None
        # one connection for both (a reconnect after a camera fault is not a second one)
        assert source.stats.connects - source.stats.reconnects == 1
        assert source.subscribers == 2
        assert first.buffer is not second.buffer
        assert a[-1].seq >= 9 and b[-1].seq >= 2
        first.close()
        await asyncio.sleep(0.6)
        assert pool.open_urls == [camera.url]  # one consumer is still there
        second.close()
        for _ in range(50):
            if not pool.open_urls:
                break
            await asyncio.sleep(0.1)
        assert pool.open_urls == []
    finally:
        await asyncio.get_running_loop().run_in_executor(None, pool.close)
    assert source.state.state is sl.StreamState.STOPPED
    assert not source_threads()


async def test_a_consumer_within_the_linger_reuses_the_source() -> None:
    url = "synthetic://?size=320x240&fps=30"
    pool = SourcePool(linger_s=5.0)
    try:
        first = pool.subscribe(url)
        await take(first, 2)
        source = pool.source(url)
        first.close()
        second = pool.subscribe(url)
        await take(second, 2)
        assert pool.source(url) is source
        assert source is not None and source.running
    finally:
        await asyncio.get_running_loop().run_in_executor(None, pool.close)
    assert not source_threads()


async def test_closing_twice_does_not_stop_the_source_for_others() -> None:
    url = "synthetic://?size=320x240&fps=30"
    pool = SourcePool(linger_s=0.2)
    try:
        first = pool.subscribe(url)
        second = pool.subscribe(url)
        await take(first, 2)
        first.close()
        first.close()  # idempotent: the second close releases nothing
        first.close()
        await asyncio.sleep(0.6)  # beyond the linger
        assert pool.open_urls == [url]
        frames = await take(second, 10, within_s=5)
        assert len(frames) == 10
        second.close()
    finally:
        await asyncio.get_running_loop().run_in_executor(None, pool.close)
        await asyncio.get_running_loop().run_in_executor(None, pool.close)  # idempotent
    assert not source_threads()


async def test_subscribe_racing_the_linger_close_always_gets_a_live_source() -> None:
    """A subscribe() right when the idle source is being stopped gets a running source."""
    url = "synthetic://?size=320x240&fps=60"
    pool = SourcePool(linger_s=0.0)  # the closer fires at once, racing every subscribe
    try:
        for _ in range(60):
            subscription = pool.subscribe(url)
            frames = await take(subscription, 1, within_s=5)  # BufferClosedError if stopped
            assert frames
            subscription.close()
            await asyncio.sleep(0.001 * (_ % 5))
    finally:
        await asyncio.get_running_loop().run_in_executor(None, pool.close)
    for _ in range(50):
        if not source_threads():
            break
        await asyncio.sleep(0.1)
    assert not source_threads()
