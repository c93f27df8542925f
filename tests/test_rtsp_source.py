"""RTSP ingest against a real GStreamer RTSP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import structlog

import streamlab as sl
from streamlab import framecode
from streamlab.camera.launcher import TestCamera, free_port
from streamlab.sources.rtsp import RtspSource
from streamlab.testing import source_threads, take

FAST = dict(reconnect_initial_s=0.05, reconnect_max_s=0.3, rtsp_timeout_ms=3000,
            stall_timeout_s=2.0)  # fmt: skip


def config(**extra: object) -> sl.StreamingConfig:
    return sl.load_config(**{**FAST, **extra})


async def stop(source: sl.Source) -> None:
    await asyncio.get_running_loop().run_in_executor(None, source.stop)


async def test_frames_arrive_with_a_readable_frame_code(camera: TestCamera) -> None:
    source = RtspSource(camera.url, config=config())
    subscription = source.subscribe("block:64")
    source.start()
    frames = await take(subscription, 30)
    await stop(source)
    codes = [framecode.read(f.image) for f in frames]
    seqs = [c.seq for c in codes]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 30
    latencies = [
        c.latency_ms(int(f.captured_at * 1000)) for c, f in zip(codes, frames, strict=True)
    ]
    assert all(0 <= ms < 5000 for ms in latencies)
    assert (frames[0].width, frames[0].height) == (640, 480)
    assert source.stats.codec == "h264"
    assert frames[0].packet is not None and frames[0].packet.keyframe
    assert frames[0].packet.data[:4] in (b"\x00\x00\x00\x01", b"\x00\x00\x01\x09")
    assert source.state.state is sl.StreamState.STOPPED
    assert not source_threads()


async def test_reconnects_after_the_server_is_killed_and_restarted(camera: TestCamera) -> None:
    source = RtspSource(camera.url, config=config())
    subscription = source.subscribe("drop_oldest:8")
    source.start()
    await take(subscription, 10)
    camera.kill()
    await asyncio.sleep(0.5)
    await asyncio.get_running_loop().run_in_executor(None, camera.start)
    after = await take(subscription, 20, within_s=30)
    await stop(source)
    assert source.stats.reconnects >= 1
    assert source.stats.connects >= 2
    assert len(after) == 20
    history = source.state.history
    assert sl.StreamState.RECONNECTING in history
    assert history.index(sl.StreamState.RECONNECTING) < len(history) - 1
    assert history[-2] is sl.StreamState.STREAMING


async def test_camera_down_at_first_connect_then_up() -> None:
    camera = TestCamera()
    # the refused connects of the first second open the circuit (8 failures): it stays open
    # 1 s here, not the default 10 s, before the connect that finds the camera up
    source = RtspSource(camera.url, config=config(circuit_open_s=1.0))
    subscription = source.subscribe("latest")
    source.start()
    await asyncio.sleep(1.0)
    assert source.stats.frames == 0
    assert source.stats.reconnects >= 1
    try:
        await asyncio.get_running_loop().run_in_executor(None, camera.start)
        frames = await take(subscription, 5, within_s=30)
    finally:
        await stop(source)
        camera.stop()
    assert len(frames) == 5
    assert sl.StreamState.STREAMING in source.state.history


async def test_refused_port_without_retry_is_a_clear_error() -> None:
    source = RtspSource(f"rtsp://127.0.0.1:{free_port()}/cam", config=config(), retry=False)
    subscription = source.subscribe("latest")
    source.start()
    with pytest.raises(sl.BufferClosedError):
        await asyncio.wait_for(subscription.get(), 10)
    await stop(source)
    assert source.state.history[-2] is sl.StreamState.ERROR
    assert "connection refused" in (source.last_error or "")
    assert not source_threads()


async def test_a_silent_server_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        source = RtspSource(
            f"rtsp://127.0.0.1:{port}/cam", config=config(rtsp_timeout_ms=1000), retry=False
        )
        subscription = source.subscribe("latest")
        source.start()
        with pytest.raises(sl.BufferClosedError):
            await asyncio.wait_for(subscription.get(), 15)
        await stop(source)
    finally:
        listener.close()
    assert "in time" in (source.last_error or "")
    assert source.state.history[-2] is sl.StreamState.ERROR


async def test_a_camera_that_plays_but_sends_nothing_is_retried_after_the_stall_timeout(
    camera: TestCamera,
) -> None:
    from streamlab.camera.faults import MutingProxy

    proxy = MutingProxy(camera.port).start()
    source = RtspSource(
        proxy.url(), config=config(rtsp_timeout_ms=30000, stall_timeout_s=1.0, rtsp_transport="tcp")
    )
    started = time.monotonic()
    source.start()
    try:
        for _ in range(150):  # 15 s: half the open timeout
            if source.stats.connects >= 3:
                break
            await asyncio.sleep(0.1)
        connects, errors = source.stats.connects, list(source.stats.errors)
        print(
            f"a camera silent after PLAY: {connects} connects in {time.monotonic() - started:.1f} s"
        )
    finally:
        await stop(source)
        proxy.stop()
    assert proxy.swallowed_bytes > 0  # the camera did send media after PLAY
    assert source.stats.frames == 0
    # each silent session is given up after ~stall_timeout_s, not the 30 s open timeout
    assert connects >= 3, errors
    assert errors and all("\n" not in e and len(e) < 300 for e in errors)


async def test_broken_camera_pipeline_is_a_clear_503(camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(source="broken")
    source = RtspSource(camera.url, config=config(), retry=False)
    subscription = source.subscribe("latest")
    source.start()
    with pytest.raises(sl.BufferClosedError):
        await asyncio.wait_for(subscription.get(), 15)
    await stop(source)
    assert "503" in (source.last_error or "")


@pytest.mark.parametrize(
    "url", ["rtsp://", "rtsp://127.0.0.1:99999/cam", "rtsp://:8554/cam", "http://127.0.0.1/x"]
)
def test_malformed_urls_are_rejected_before_connecting(url: str) -> None:
    with pytest.raises(sl.SourceError):
        RtspSource(url)
    assert not source_threads()


async def test_circuit_opens_after_repeated_failures() -> None:
    source = RtspSource(
        f"rtsp://127.0.0.1:{free_port()}/cam",
        config=config(circuit_failures=3, circuit_open_s=30, reconnect_initial_s=0.01),
    )
    source.start()
    for _ in range(200):
        if source.state.state is sl.StreamState.ERROR:
            break
        await asyncio.sleep(0.05)
    state = source.state.state
    await stop(source)
    assert state is sl.StreamState.ERROR
    assert source.breaker.times_opened == 1
    assert source.stats.connects == 3


async def test_credentials_never_leak(capsys: pytest.CaptureFixture[str]) -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory())
    secret = "hunter2secret"
    url = f"rtsp://admin:{secret}@127.0.0.1:{free_port()}/cam"
    source = RtspSource(url, config=config(), retry=False)
    subscription = source.subscribe("latest")
    source.start()
    with pytest.raises(sl.BufferClosedError):
        await asyncio.wait_for(subscription.get(), 10)
    await stop(source)
    seen = " ".join(
        [repr(source), source.name, source.display_url, str(source.last_error),
         *source.stats.errors, capsys.readouterr().out]
    )  # fmt: skip
    assert secret not in seen
    assert "admin" not in seen
    assert "***@127.0.0.1" in source.display_url


async def test_stop_while_connecting_does_not_hang() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    source = RtspSource(
        f"rtsp://127.0.0.1:{listener.getsockname()[1]}/cam", config=config(rtsp_timeout_ms=2000)
    )
    source.start()
    await asyncio.sleep(0.3)
    await stop(source)
    listener.close()
    assert not source_threads()
    assert source.state.state is sl.StreamState.STOPPED
    assert threading.active_count() < 50


async def test_access_units_reach_listeners_before_decoding(camera: TestCamera) -> None:
    source = RtspSource(camera.url, config=config())
    units: list[tuple[sl.frame.EncodedUnit, float]] = []  # type: ignore[name-defined]
    remove = source.add_unit_listener(lambda unit, at: units.append((unit, at)))
    subscription = source.subscribe("block:64")
    source.start()
    frames = await take(subscription, 20)
    remove()
    count = len(units)
    await take(subscription, 5)
    await stop(source)
    assert count >= 20
    assert len(units) == count  # removed listeners hear nothing more
    assert any(unit.keyframe for unit, _ in units)
    assert all(unit.codec == "h264" and unit.data for unit, _ in units)
    first_unit_at = units[0][1]
    assert first_unit_at <= frames[0].captured_at  # read before the frame was decoded


# --- cameras that differ ----------------------------------------------------------------


async def test_auto_transport_uses_udp_when_the_camera_refuses_tcp(camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(transport="udp", size=(320, 240))
    source = RtspSource(camera.url, config=config())
    assert source.config.rtsp_transport == "auto"
    subscription = source.subscribe("block:64")
    source.start()
    frames = await take(subscription, 20)
    await stop(source)
    assert source.stats.transport == "udp"
    assert source.stats.connects == 2  # TCP refused (461), then UDP at once
    assert source.stats.reconnects == 0 and source.breaker.times_opened == 0
    assert len({framecode.read(f.image).seq for f in frames}) == 20


async def test_auto_transport_goes_back_to_tcp(camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(transport="udp", size=(320, 240))
    source = RtspSource(camera.url, config=config())
    subscription = source.subscribe("drop_oldest:8")
    source.start()
    await take(subscription, 5)
    assert source.stats.transport == "udp"
    camera.stop()
    camera.transport = "tcp"  # the same camera comes back refusing UDP
    await asyncio.get_running_loop().run_in_executor(None, camera.start)
    await take(subscription, 10, within_s=30)
    await stop(source)
    assert source.stats.transport == "tcp"
    assert source.transport.switches == 2


async def test_fixed_tcp_against_a_udp_only_camera_is_a_clear_461(camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(transport="udp", size=(320, 240))
    source = RtspSource(camera.url, config=config(rtsp_transport="tcp"), retry=False)
    subscription = source.subscribe("latest")
    source.start()
    with pytest.raises(sl.BufferClosedError):
        await asyncio.wait_for(subscription.get(), 15)
    await stop(source)
    assert "refused RTSP over TCP (461" in (source.last_error or "")


def _nal_types(data: bytes) -> list[int]:
    return [data[i + 3] & 0x1F for i in range(len(data) - 3) if data[i : i + 3] == b"\0\0\1"]


def _profile_idc(data: bytes) -> int:
    index = data.find(b"\0\0\1\x67")
    return data[index + 4]


@pytest.mark.parametrize(
    "options",
    [{"gop": 90}, {"profile": "baseline"}, {"profile": "main"}, {"profile": "high"},
     {"slices": 4}, {"profile": "high", "bframes": 2}],
    ids=["gop90", "baseline", "main", "high", "slices4", "bframes2"],
)  # fmt: skip
async def test_camera_conditions_are_read_whole(camera_factory, options: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    # 60 fps: the 100 frames in 1.7 s instead of 3.3; a keyframe every 30 frames unless the
    # case sets its own GOP (what the default, one a second, gives at 30 fps)
    options = {"gop": 30, **options}
    camera = camera_factory(size=(320, 240), fps=60, **options)
    source = RtspSource(camera.url, config=config())
    units: list[sl.frame.EncodedUnit] = []  # type: ignore[name-defined]
    source.add_unit_listener(lambda unit, _: units.append(unit))
    subscription = source.subscribe("block:256")
    source.start()
    frames = await take(subscription, 100, within_s=40)
    await stop(source)
    codes = [framecode.try_read(f.image) for f in frames]
    assert all(c is not None for c in codes), "every frame decodes whole (no partial slices)"
    seqs = [c.seq for c in codes]  # type: ignore[union-attr]
    assert seqs == sorted(seqs) and len(set(seqs)) == 100  # display order, no duplicates
    keyframes = [f.seq for f in frames if f.packet is not None and f.packet.keyframe]
    gop = options["gop"]
    assert 100 // gop <= len(keyframes) <= 100 // gop + 1
    first_key = next(u for u in units if u.keyframe)
    idc = {"baseline": 66, "main": 77, "high": 100}.get(options.get("profile", ""), 66)
    assert _profile_idc(first_key.data) == idc
    if "slices" in options:
        key = next(f for f in frames if f.packet is not None and f.packet.keyframe)
        assert _nal_types(key.packet.data).count(5) == 4  # type: ignore[union-attr]
    pts = [u.pts for u in units if u.pts is not None]
    if options.get("bframes"):
        assert pts != sorted(pts)  # sent in decode order, shown in display order
    else:
        assert pts == sorted(pts)


# --- faults -----------------------------------------------------------------------------


async def test_stop_interrupts_a_hanging_connect_within_a_second() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    source = RtspSource(
        f"rtsp://127.0.0.1:{listener.getsockname()[1]}/cam", config=config(rtsp_timeout_ms=30000)
    )
    source.start()
    await asyncio.sleep(0.5)  # av.open is now blocked waiting for an answer
    started = time.monotonic()
    await stop(source)
    took = time.monotonic() - started
    listener.close()
    print(f"stop during a hanging open: {took * 1000:.0f} ms")
    assert took < 1.0
    assert not source_threads()


async def test_stop_interrupts_a_hanging_read_within_a_second(camera: TestCamera) -> None:
    source = RtspSource(camera.url, config=config(rtsp_timeout_ms=30000, stall_timeout_s=30))
    subscription = source.subscribe("latest")
    source.start()
    await take(subscription, 5)
    camera.freeze()  # SIGSTOP: the socket stays open, nothing more arrives
    try:
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await stop(source)
        took = time.monotonic() - started
    finally:
        camera.thaw()
    print(f"stop during a hanging read: {took * 1000:.0f} ms")
    assert took < 1.0
    assert not source_threads()


async def test_backoff_resets_only_after_a_healthy_while(camera: TestCamera) -> None:
    """A camera that sends a little and drops backs off like one that refuses."""
    from streamlab.camera.faults import CuttingProxy

    with CuttingProxy(camera.port, cut_after_s=0.8) as proxy:
        for healthy_reset_s, expected in ((30.0, "grows"), (0.2, "resets")):
            source = RtspSource(proxy.url(camera.path), config=config(
                healthy_reset_s=healthy_reset_s, reconnect_initial_s=0.01, reconnect_max_s=0.1,
            ))  # fmt: skip
            source.start()
            for _ in range(300):  # until four connections streamed and were cut
                if source.stats.reconnects >= 4:
                    break
                await asyncio.sleep(0.05)
            attempt, reconnects = source.backoff.attempt, source.stats.reconnects
            recovered = len(source.stats.recovered)
            await stop(source)
            print(f"healthy_reset_s={healthy_reset_s}: backoff attempt {attempt} after "
                  f"{reconnects} reconnects, {recovered} recovered")  # fmt: skip
            assert reconnects >= 4 and recovered >= 3  # each connection streamed
            if expected == "grows":
                assert attempt == reconnects  # one frame never resets the backoff
            else:
                assert attempt <= 1
            assert source.breaker.times_opened == 0


async def test_garbage_on_the_rtsp_port_is_an_error_then_the_camera_recovers() -> None:
    from streamlab.camera.faults import GarbageServer

    garbage = GarbageServer().start()
    camera = TestCamera(port=garbage.port, size=(320, 240))
    source = RtspSource(camera.url, config=config(reconnect_max_s=0.5))
    subscription = source.subscribe("latest")
    source.start()
    try:
        for _ in range(100):
            if garbage.connections >= 3 and source.stats.reconnects >= 3:
                break
            await asyncio.sleep(0.1)
        errors = list(source.stats.errors)
        assert source.running and source.stats.frames == 0
        garbage.stop()
        await asyncio.get_running_loop().run_in_executor(None, camera.start)
        started = time.monotonic()
        await take(subscription, 5, within_s=20)
        print(f"garbage -> camera: frames {time.monotonic() - started:.2f} s after it started")
    finally:
        await stop(source)
        garbage.stop()
        camera.stop()
    assert errors and all("\n" not in e and len(e) < 300 for e in errors)
    assert source.stats.recovered  # the outage is reported as recovered, not as an error
    assert source.stats.outage is None
