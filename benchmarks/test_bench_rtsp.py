"""RTSP ingest: time to first frame, recovery after a restart, CPU and fps per buffering."""

from __future__ import annotations

import time

import pytest

import streamlab as sl
from streamlab.camera.launcher import TestCamera
from streamlab.sources.rtsp import RtspSource
from streamlab.testing import take

FAST = sl.load_config(reconnect_initial_s=0.05, reconnect_max_s=0.2, rtsp_timeout_ms=5000)


def test_rtsp_time_to_first_frame(benchmark, loop, camera: TestCamera) -> None:  # type: ignore[no-untyped-def]
    async def first_frame() -> None:
        source = RtspSource(camera.url, config=FAST)
        subscription = source.subscribe("latest")
        source.start()
        await take(subscription, 1)
        await loop.run_in_executor(None, source.stop)

    benchmark.group = "rtsp connect"
    benchmark.extra_info.update(scenario="first frame", transport="tcp", size="640x480")
    benchmark.pedantic(lambda: loop.run_until_complete(first_frame()), rounds=8, iterations=1)


def test_rtsp_time_to_frames_after_restart(benchmark, loop, camera: TestCamera) -> None:  # type: ignore[no-untyped-def]
    source = RtspSource(camera.url, config=FAST)
    subscription = source.subscribe("latest")
    source.start()
    loop.run_until_complete(take(subscription, 1))

    def setup() -> None:
        camera.kill()
        subscription.buffer.clear()

    async def recover() -> None:
        await loop.run_in_executor(None, camera.start)
        await take(subscription, 1, within_s=30)

    benchmark.group = "rtsp connect"
    benchmark.extra_info.update(scenario="after restart", transport="tcp", size="640x480")
    benchmark.pedantic(lambda: loop.run_until_complete(recover()), setup=setup, rounds=4)
    source.stop()
    assert source.stats.reconnects >= 4


@pytest.mark.parametrize("buffering", ["latest", "block:8"])
def test_rtsp_read_cpu_and_fps(benchmark, loop, camera: TestCamera, buffering: str) -> None:  # type: ignore[no-untyped-def]
    seconds = 3.0

    async def read() -> tuple[int, float]:
        source = RtspSource(camera.url, config=FAST)
        subscription = source.subscribe(buffering)
        source.start()
        await take(subscription, 1)
        cpu0, t0, count = time.process_time(), time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            await subscription.get()
            count += 1
        cpu = time.process_time() - cpu0
        await loop.run_in_executor(None, source.stop)
        return count, cpu

    results: list[tuple[int, float]] = []
    benchmark.group = "rtsp read 640x480@30"
    benchmark.pedantic(lambda: results.append(loop.run_until_complete(read())), rounds=2)
    frames = sum(r[0] for r in results)
    cpu = sum(r[1] for r in results)
    benchmark.extra_info.update(
        buffering=buffering,
        fps=round(frames / (seconds * len(results)), 2),
        cpu_percent=round(100 * cpu / (seconds * len(results)), 1),
        cpu_ms_per_frame=round(1000 * cpu / max(frames, 1), 3),
    )
    assert frames > 0
