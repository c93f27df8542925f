"""Soak: a served RTSP camera watched by 4 aiortc viewers; the server's memory, fds and
threads (its own process, measured on its PID) and the glass-to-glass p95 (frame code
burned at the camera, read at each viewer) stay flat.

30 s here; ``benchmarks/test_bench_soak.py`` runs the same for 30 minutes.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import psutil
import pytest

from streamlab.camera.launcher import TestCamera, free_port
from streamlab.experiments.processes import HOSTS, Child
from streamlab.webrtc.client import WhepClient


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def forget(client: WhepClient) -> None:
    """Drop what a viewer recorded per frame (it is read every second): the measuring
    viewers in this process must not grow (or slow ``gc``) over 30 minutes themselves."""
    received = client.received
    for records in (received.latencies_ms, received.seqs, received.arrivals,
                    received.frame_sizes, received.messages):  # fmt: skip
        records.clear()


async def soak(camera_url: str, *, duration_s: float, viewers: int = 4,
               warmup_s: float = 5.0) -> dict[str, Any]:  # fmt: skip
    """Serve ``camera_url`` (``streamlab.experiments.hosts serve``, its own process) to
    ``viewers`` viewers in this process for ``duration_s``; sample every second. Returns the
    first and the last fifth (after the warm-up) of every measure."""
    settings = json.dumps({"max_viewers": max(16, viewers)})
    command = [*HOSTS, "serve", "--source", camera_url, "--port", str(free_port()),
               "--settings", settings]  # fmt: skip
    samples: list[dict[str, Any]] = []
    with Child(command, what="streamlab server") as child:
        url = await asyncio.to_thread(child.ready, "viewer:", 60.0)
        server = psutil.Process(child.pid)
        clients = [await WhepClient(url + "whep/cam").connect() for _ in range(viewers)]
        try:
            await asyncio.gather(*(c.wait_frames(10) for c in clients))
            await asyncio.sleep(warmup_s)
            for c in clients:
                forget(c)
            started = time.monotonic()
            while time.monotonic() - started < duration_s:
                await asyncio.sleep(1.0)
                latencies = [ms for c in clients for ms in c.received.latencies_ms]
                for c in clients:
                    forget(c)
                samples.append({"rss_mb": server.memory_info().rss / 2**20,
                                "fds": server.num_fds(), "threads": server.num_threads(),
                                "latencies": latencies})  # fmt: skip
            frames = [c.received.frames for c in clients]
        finally:
            for c in clients:
                await c.close()
    fifth = max(1, len(samples) // 5)
    parts = {"first": samples[:fifth], "last": samples[-fifth:]}
    result: dict[str, Any] = {"viewers": viewers, "duration_s": duration_s, "frames": frames}
    for label, part in parts.items():
        result[label] = {
            "rss_mb": round(statistics.median(s["rss_mb"] for s in part), 1),
            "fds": max(s["fds"] for s in part),
            "threads": max(s["threads"] for s in part),
            # the median of per-second p95s: one busy second of a shared machine is no trend
            "p95_ms": round(
                statistics.median(p95(s["latencies"]) for s in part if s["latencies"]), 1
            ),
            "latency_samples": sum(len(s["latencies"]) for s in part),
        }
    return result


def assert_flat(result: dict[str, Any], *, floor_ms: float = 30) -> None:
    first, last = result["first"], result["last"]
    print(f"soak {result['duration_s']:.0f} s, {result['viewers']} viewers "
          f"(frames {result['frames']}): first {first} -> last {last}")  # fmt: skip
    assert first["latency_samples"] > 100 and last["latency_samples"] > 100
    assert last["rss_mb"] <= first["rss_mb"] * 1.10
    assert last["fds"] <= first["fds"] + 2
    assert last["threads"] <= first["threads"] + 1
    # within 10 %, with a floor: on a busy 2-core machine a p95 of ~100-300 ms moves by more
    # than 10 % with nothing growing (a shared CI runner slowed to ~17 fps moved it 358 -> 506
    # ms); a queue that grows adds seconds, far more than the floor
    assert last["p95_ms"] <= max(first["p95_ms"] * 1.10, first["p95_ms"] + floor_ms)


@pytest.mark.timeout(150)
async def test_soak_30s_with_4_viewers(camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera: TestCamera = camera_factory(size=(320, 240), fps=30)
    assert_flat(await soak(camera.url, duration_s=30, viewers=4), floor_ms=400)
