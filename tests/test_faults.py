"""Faults on a served stream, with real parts: the GStreamer camera restarted, frozen and
impersonated by garbage, viewers that vanish without a word, a viewer that stops reading.

Every scenario is a function with its size as arguments; ``make test`` runs small sizes and
``benchmarks/test_bench_soak.py`` the long ones. Recovery times are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import statistics
import sys
import time
from typing import Any

import aiohttp
import psutil
import pytest

import streamlab as sl
from streamlab.camera.faults import GarbageServer
from streamlab.camera.launcher import TestCamera
from streamlab.testing import require_gst_rtsp, until
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server

CAP_S = 1.0  # reconnect backoff cap of these tests
OPEN_TIMEOUT_S = 2.0  # rtsp_timeout_ms of these tests
FAST = dict(port=0, reconnect_initial_s=0.05, reconnect_max_s=CAP_S,
            rtsp_timeout_ms=int(OPEN_TIMEOUT_S * 1000),
            stall_timeout_s=1.0, viewer_connect_timeout_s=10)  # fmt: skip


def config(**extra: Any) -> sl.StreamingConfig:
    return sl.load_config(**{**FAST, **extra})


async def quiet(client: WhepClient, for_s: float = 0.3, within_s: float = 10.0) -> None:
    """Until the viewer has received nothing for ``for_s`` seconds."""
    started = time.monotonic()
    count, since = client.received.frames, time.monotonic()
    while time.monotonic() - since < for_s:
        await asyncio.sleep(0.02)
        if client.received.frames != count:
            count, since = client.received.frames, time.monotonic()
        if time.monotonic() - started > within_s:
            pytest.fail("the viewer kept receiving frames while the camera was down")


def summary(values: list[float]) -> str:
    return (f"min {min(values):.2f} s, median {statistics.median(values):.2f} s, "
            f"max {max(values):.2f} s over {len(values)}")  # fmt: skip


# --- the camera restarted while a viewer watches ----------------------------------------


async def camera_restarts(camera: TestCamera, restarts: int) -> list[float]:
    """Restart ``camera`` ``restarts`` times under a watching viewer; return, per restart,
    the seconds from the camera listening again to new frames at the viewer."""
    loop = asyncio.get_running_loop()
    server = Server(config())
    stream = server.add_stream(camera.url, name="cam")
    recoveries: list[float] = []
    async with server:
        client = await WhepClient(server.url + "whep/cam").connect()
        await client.wait_frames(15)
        sessions = set(server.sessions)
        for _ in range(restarts):
            await loop.run_in_executor(None, camera.stop)
            await quiet(client)
            await loop.run_in_executor(None, camera.start)
            before = client.received.codes
            recoveries.append(
                await until(
                    lambda b=before: client.received.codes >= b + 3,  # type: ignore[misc]
                    CAP_S + 10,
                    "frames after a camera restart",
                )
            )
        assert set(server.sessions) == sessions, "the viewer's session survives every restart"
        assert client.pc is not None and client.pc.connectionState == "connected"
        assert len(stream.fanout.viewers) == 1
        reconnects = stream.pipeline.source.stats.reconnects
        assert await client.close() == 200
    assert reconnects >= restarts
    return recoveries


@pytest.mark.timeout(180)
async def test_camera_restarted_20_times_while_a_viewer_watches(camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(size=(320, 240))
    recoveries = await camera_restarts(camera, 20)
    print(f"camera restart -> frames at the viewer: {summary(recoveries)}")
    # the bound holds for the typical restart; a reconnect that lands while the
    # camera is still starting may wait out the open timeout (rtsp_timeout_ms = 2 s)
    assert statistics.median(recoveries) <= CAP_S + 2.0
    assert max(recoveries) <= CAP_S + OPEN_TIMEOUT_S + 2.0


# --- the camera frozen (SIGSTOP), then resumed ------------------------------------------


async def test_camera_frozen_then_resumed(camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(size=(320, 240))
    server = Server(config())
    stream = server.add_stream(camera.url, name="cam")
    source = stream.pipeline.source
    async with server:
        client = await WhepClient(server.url + "whep/cam").connect()
        await client.wait_frames(15)
        camera.freeze()
        frozen_at = sl.clock.now()
        try:
            stall_s = await until(lambda: source.stats.stalls >= 1, 10, "a stall")
            # frames still in the loopback TCP buffers arrive after SIGSTOP: the stall
            # clock runs from the last of them
            silent_s = sl.clock.now() - (source.stats.last_frame_at or frozen_at)
            await asyncio.sleep(2.5)  # frozen a while: reconnects time out against it
        finally:
            camera.thaw()
        before = client.received.codes
        recovery = await until(lambda: client.received.codes >= before + 3, 15,
                               "frames after SIGCONT")  # fmt: skip
        sessions = len(server.sessions)
        await client.close()
    print(f"SIGSTOP: stall detected after {stall_s:.2f} s ({silent_s:.2f} s after the last frame "
          f"arrived); SIGCONT -> frames {recovery:.2f} s "
          f"(reconnects {source.stats.reconnects})")  # fmt: skip
    assert sessions == 1
    assert stall_s <= 1.0 + 2.0  # stall_timeout_s + margin
    assert silent_s <= 1.0 + 0.5, "the stall is declared stall_timeout_s after the last frame"
    assert recovery <= 2.0 + CAP_S + 2.0  # a pending connect may wait rtsp_timeout first
    assert source.stats.recovered, "the outage is reported as recovered"


# --- garbage bytes on the RTSP port -----------------------------------------------------


async def test_garbage_on_the_rtsp_port_of_a_served_stream() -> None:
    require_gst_rtsp()
    garbage = GarbageServer().start()
    camera = TestCamera(port=garbage.port, size=(320, 240))
    server = Server(config())
    stream = server.add_stream(camera.url, name="cam")
    source = stream.pipeline.source
    try:
        async with server:
            client = await WhepClient(server.url + "whep/cam").connect()
            await until(lambda: garbage.connections >= 3, 20, "reconnects to the garbage")
            async with (
                aiohttp.ClientSession() as http,
                http.get(server.url + "api/streams") as api,
                http.get(server.url + "healthz") as health,
            ):
                assert api.status == 200 and health.status in (200, 503)
                listed = await api.json()
            errors = list(source.stats.errors)
            garbage.stop()
            await asyncio.get_running_loop().run_in_executor(None, camera.start)
            recovery = await until(lambda: client.received.codes >= 3, CAP_S + 10,
                                   "frames after the real camera came up")  # fmt: skip
            await client.close()
    finally:
        garbage.stop()
        camera.stop()
    print(f"garbage on the port: {len(errors)} one-line errors, e.g. {errors[-1]!r}; "
          f"real camera up -> frames {recovery:.2f} s")  # fmt: skip
    assert listed["streams"][0]["name"] == "cam"
    assert errors and all("\n" not in e and len(e) < 300 for e in errors)
    assert any("not RTSP" in e for e in errors)
    assert recovery <= CAP_S + 2.0


# --- viewers that vanish without DELETE, reaped by ICE consent expiry -------------------

VIEWERS_CHILD = r"""
import asyncio, sys
from streamlab.webrtc.client import WhepClient

async def main(url, count):
    clients = []
    for _ in range(count):
        clients.append(await WhepClient(url).connect(read_codes=False))
    await asyncio.gather(*(c.wait_frames(1, within_s=120) for c in clients))
    print("READY", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def resources() -> dict[str, float]:
    gc.collect()
    process = psutil.Process()
    return {
        "threads": process.num_threads(),
        "fds": process.num_fds(),
        "tasks": len(asyncio.all_tasks()),
        "rss_mb": process.memory_info().rss / 2**20,
    }


async def viewers_child(url: str, count: int) -> asyncio.subprocess.Process:
    """A process holding ``count`` connected WHEP viewers (until it is killed); several of
    them hold many viewers (one process's event loop cannot keep 500 peers alive)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", VIEWERS_CHILD, url, str(count), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 60 + count * 0.5)
        assert line.strip() == b"READY", line
    except BaseException:
        await kill_all([child])  # never leave a process of viewers behind
        raise
    return child


async def kill_all(children: list[asyncio.subprocess.Process]) -> None:
    for child in children:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await child.wait()


async def abrupt_viewers(count: int, *, monkeypatch: pytest.MonkeyPatch | None = None,
                         consent: tuple[float, int] | None = None, fps: int = 5,
                         per_child: int = 100, rounds: int = 1) -> dict[str, Any]:  # fmt: skip
    """``count`` viewers connect from other processes (``per_child`` each), which are then
    SIGKILLed (no DELETE, no DTLS close): the server must reap every session by ICE consent
    expiry and give back its threads, fds, tasks and memory. ``consent`` = aioice's
    (interval s, failures) to make expiry quicker than its 5 s x 6. With ``rounds`` > 1 the
    whole cycle repeats, and memory must not grow from one round to the next (the first
    round's growth may be the allocator keeping freed memory, not a leak)."""
    import aioice.ice

    interval, failures = consent or (aioice.ice.CONSENT_INTERVAL, aioice.ice.CONSENT_FAILURES)
    if consent and monkeypatch is not None:
        monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", interval)
        monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", failures)
    server = Server(config(max_viewers=max(count, 16)))
    stream = server.add_stream(f"synthetic://?size=320x240&fps={fps}", name="demo")
    async with server:
        warm = await WhepClient(server.url + "whep/demo").connect(read_codes=False)
        await warm.wait_frames(3)
        await warm.close()
        await until(lambda: not server.sessions, 10, "the warm-up viewer to leave")
        await asyncio.sleep(0.5)
        baseline = resources()
        afters: list[dict[str, float]] = []
        peaks: list[int] = []
        for _ in range(rounds):
            shares = [min(per_child, count - i) for i in range(0, count, per_child)]
            children: list[asyncio.subprocess.Process] = []
            try:
                for n in shares:
                    children.append(await viewers_child(server.url + "whep/demo", n))
                peak = {**resources(), "sessions": len(server.sessions)}
            finally:
                await kill_all(children)
            killed = time.monotonic()
            trimmed = server.heap.trims  # the next trim follows the last of these closes
            reaped_s = await until(lambda: not server.sessions and not stream.fanout.viewers,
                                   interval * 1.2 * (failures + 2) + 10 + count * 0.05,
                                   "sessions reaped by consent expiry")  # fmt: skip
            await until(lambda: server.heap.trims > trimmed, 15,  # noqa: B023
                        "freed heap given back to the OS after the closes")  # fmt: skip
            afters.append(resources())
            peaks.append(peak["sessions"])
        after = afters[-1]
    result = {"count": count, "reaped_s": reaped_s, "since_kill_s": time.monotonic() - killed,
              "baseline": baseline, "peak": peak, "after": after, "rounds": afters,
              "peak_sessions": peaks}  # fmt: skip
    print(f"{count} abrupt viewers: peak {peak} (sessions per round {peaks}), reaped "
          f"{reaped_s:.1f} s after SIGKILL; baseline {baseline} -> after each round {afters}")  # fmt: skip
    # every viewer is served; with hundreds of peers on 2 cores a few may lose ICE consent
    # while the others still connect (1 in 100 allowed there, none in the small version)
    assert min(peaks) >= count - count // 100, f"sessions at the peak of each round: {peaks}"
    assert after["threads"] <= baseline["threads"] + 2
    assert after["fds"] <= baseline["fds"] + 5
    assert after["tasks"] <= baseline["tasks"] + 5
    if rounds > 1:
        assert after["rss_mb"] <= afters[0]["rss_mb"] + 40, "memory grows round after round"
    else:
        assert after["rss_mb"] <= baseline["rss_mb"] + 40 + count * 0.1
    return result


@pytest.mark.timeout(180)
async def test_viewers_dropped_without_delete_are_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    await abrupt_viewers(30, monkeypatch=monkeypatch, consent=(1.0, 3))


# --- a slow viewer never slows another --------------------------------------------------


async def test_a_frozen_viewer_and_a_throttled_viewer_do_not_slow_another() -> None:
    server = Server(config())
    stream = server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        fast = await WhepClient(server.url + "whep/demo").connect(read_codes=False)
        await fast.wait_frames(10)

        async def fps(window_s: float = 3.0) -> float:
            start = fast.received.frames
            await asyncio.sleep(window_s)
            return (fast.received.frames - start) / window_s

        alone = await fps()
        frozen = await viewers_child(server.url + "whep/demo", 1)
        before = set(stream.fanout.viewers)
        throttled = await WhepClient(server.url + "whep/demo").connect(read_codes=False)
        await throttled.wait_frames(1)
        (throttled_id,) = set(stream.fanout.viewers) - before
        await server.update_viewer("demo", throttled_id, network="rate=100k,queue=200ms")
        frozen.send_signal(signal.SIGSTOP)  # stops reading, acking and answering consent
        try:
            shared = await fps()
            slow_start = throttled.received.frames
            await asyncio.sleep(1.0)
            slow_rate = throttled.received.frames - slow_start
        finally:
            with contextlib.suppress(ProcessLookupError):
                frozen.send_signal(signal.SIGKILL)
            await frozen.wait()
        await throttled.close()
        await fast.close()
    print(f"fast viewer: {alone:.1f} fps alone, {shared:.1f} fps beside a frozen viewer and "
          f"a 100 kbit/s viewer (which got {slow_rate} frames in 1 s)")  # fmt: skip
    assert alone >= 20
    assert shared >= 0.8 * alone
