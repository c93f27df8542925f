"""Buffering strategies: bounded, each drops what it declares, counted."""

from __future__ import annotations

import asyncio
import threading
from fractions import Fraction

import numpy as np
import pytest

import streamlab as sl
from streamlab.clock import now
from streamlab.strategies.buffering import DropReason, WhenFull

IMAGE = np.zeros((4, 4, 3), np.uint8)


def frame(seq: int, captured_at: float | None = None) -> sl.Frame:
    at = now() if captured_at is None else captured_at
    return sl.Frame(IMAGE, seq, seq, Fraction(1, 30), at)


def drain(buffer: sl.FrameBuffer) -> list[int]:
    out = []
    while (f := buffer.get_nowait()) is not None:
        out.append(f.seq)
    return out


@pytest.mark.parametrize(
    ("spec", "capacity", "when_full"),
    [
        ("latest", 1, WhenFull.DROP_OLDEST),
        ("drop_oldest:3", 3, WhenFull.DROP_OLDEST),
        ("drop_newest:5", 5, WhenFull.DROP_NEWEST),
        ("block:8", 8, WhenFull.BLOCK),
        ("max_age:150", 30, WhenFull.DROP_OLDEST),
    ],
)
def test_registry_builds_each_strategy(spec: str, capacity: int, when_full: WhenFull) -> None:
    policy = sl.buffering.create(spec)
    assert policy.capacity == capacity
    assert policy.when_full is when_full
    assert policy.name == spec


def test_latest_keeps_only_the_newest() -> None:
    dropped: list[tuple[int, DropReason]] = []
    buffer = sl.buffering.create("latest").buffer(on_drop=lambda f, r: dropped.append((f.seq, r)))
    for seq in range(10):
        buffer.put(frame(seq))
    assert drain(buffer) == [9]
    assert buffer.stats.dropped_full == 9
    assert [s for s, _ in dropped] == list(range(9))
    assert {r for _, r in dropped} == {DropReason.FULL}


def test_drop_oldest_keeps_the_last_n_in_order() -> None:
    buffer = sl.buffering.create("drop_oldest:3").buffer()
    for seq in range(10):
        buffer.put(frame(seq))
    assert drain(buffer) == [7, 8, 9]
    assert buffer.stats.put == 10
    assert buffer.stats.delivered == 3
    assert buffer.stats.dropped == 7


def test_drop_newest_keeps_the_first_n() -> None:
    buffer = sl.buffering.create("drop_newest:3").buffer()
    taken = [buffer.put(frame(seq)) for seq in range(10)]
    assert taken == [True] * 3 + [False] * 7
    assert drain(buffer) == [0, 1, 2]
    assert buffer.stats.dropped_full == 7


def test_block_is_lossless_under_a_slow_consumer() -> None:
    buffer = sl.buffering.create("block:2").buffer()
    produced = 50

    def produce() -> None:
        for seq in range(produced):
            assert buffer.put(frame(seq))

    async def consume() -> list[int]:
        got = []
        for _ in range(produced):
            got.append((await buffer.get()).seq)
            await asyncio.sleep(0.001)
        return got

    producer = threading.Thread(target=produce)
    producer.start()
    got = asyncio.run(consume())
    producer.join(5)
    assert not producer.is_alive()
    assert got == list(range(produced))
    assert buffer.stats.dropped == 0
    assert buffer.stats.blocked_s > 0


def test_block_releases_a_blocked_producer_on_close() -> None:
    buffer = sl.buffering.create("block:1").buffer()
    buffer.put(frame(0))
    results: list[bool] = []
    producer = threading.Thread(target=lambda: results.append(buffer.put(frame(1))))
    producer.start()
    producer.join(0.2)
    assert producer.is_alive()
    buffer.close()
    producer.join(5)
    assert results == [False]


def test_max_age_drops_stale_frames_when_read() -> None:
    buffer = sl.buffering.create("max_age:100").buffer()
    old = now() - 1.0
    for seq in range(3):
        buffer.put(frame(seq, captured_at=old))
    buffer.put(frame(3))
    assert drain(buffer) == [3]
    assert buffer.stats.dropped_stale == 3
    assert buffer.stats.dropped_full == 0


async def test_get_wakes_when_a_thread_puts() -> None:
    buffer = sl.buffering.create("drop_oldest:4").buffer()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, lambda: threading.Thread(target=buffer.put, args=(frame(7),)).start())
    got = await asyncio.wait_for(buffer.get(), 5)
    assert got.seq == 7


async def test_get_raises_once_closed_and_drained() -> None:
    buffer = sl.buffering.create("drop_oldest:4").buffer()
    buffer.put(frame(1))
    buffer.close()
    assert (await buffer.get()).seq == 1
    with pytest.raises(sl.BufferClosedError):
        await buffer.get()
    assert not buffer.put(frame(2))


async def test_close_wakes_a_waiting_consumer() -> None:
    buffer = sl.buffering.create("latest").buffer()
    waiter = asyncio.create_task(buffer.get())
    await asyncio.sleep(0.01)
    buffer.close()
    with pytest.raises(sl.BufferClosedError):
        await asyncio.wait_for(waiter, 5)


@pytest.mark.parametrize("spec", ["drop_oldest:0", "block:5000", "max_age:0", "latest:3", "nope"])
def test_bad_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(sl.ConfigError) as info:
        sl.buffering.create(spec)
    assert "buffering" in str(info.value)
