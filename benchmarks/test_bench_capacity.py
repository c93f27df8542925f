"""Capacity: how many 640x480@15 RTSP streams with motion analysis one ``streamlab serve``
sustains on this machine with at most 5 % fps loss, one aiortc viewer per stream.

Part of ``make bench-full``; it takes up to an hour and loads every core, so run it on a
machine doing nothing else. Alone::

    .venv/bin/pytest benchmarks/test_bench_capacity.py --benchmark-enable -s

The camera is one test-camera process in file mode (its H.264 sent as is, one pipeline per client, so the
camera costs no encoding); the clip is made once per run from the synthetic scene. For each
delivery (passthrough, VP8) the stream count climbs a ladder until a step fails; a step
passes when every viewer's delivered fps (frames the server sent it, from /api/streams)
over the window is at least 95 % of 15. ``extra_info`` holds every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from streamlab import framecode
from streamlab.camera.launcher import TestCamera, free_port, gst_rtsp_available
from streamlab.sources.synthetic import SyntheticScene
from streamlab.webrtc.client import WhepClient

FPS = 15
SIZE = (640, 480)
CLIP_S = 75
WARMUP_S = 6.0
WINDOW_S = 10.0
LOSS = 0.05
LADDERS = {
    codec: [int(n) for n in os.environ[f"CAPACITY_{codec.upper()}"].split(",")]
    if f"CAPACITY_{codec.upper()}" in os.environ
    else ladder
    for codec, ladder in {
        "passthrough": [4, 8, 12, 16, 18, 20, 24],
        "vp8": [2, 4, 5, 6, 7, 8, 10],
    }.items()
}  # CAPACITY_VP8=6,7,8 overrides a ladder

pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640x480@15 H.264 clip (baseline, 1 s GOP) of the synthetic scene, frame code on."""
    path = tmp_path_factory.mktemp("capacity") / "scene-640x480-15.mp4"
    scene = SyntheticScene(*SIZE, objects=3, seed=4)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(FPS),
                          "profile": "baseline", "b": "1500k"}  # fmt: skip
        for seq in range(CLIP_S * FPS):
            image, _ = scene.render(seq)
            framecode.burn(image, seq, seq * 1000 // FPS)
            video = av.VideoFrame.from_ndarray(image, format="bgr24")
            video.pts, video.time_base = seq, Fraction(1, FPS)
            container.mux(stream.encode(video))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def file_camera(clip: Path) -> Iterator[TestCamera]:
    if not gst_rtsp_available():
        pytest.skip("needs the GStreamer RTSP server")
    with TestCamera(size=SIZE, fps=FPS, source=str(clip)) as camera:
        yield camera


def serve(url: str, streams: int, codec: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    command = [sys.executable, "-m", "streamlab.cli", "serve", "--port", str(port),
               "--codec", codec, "--analyze", "motion", "--skipping", "none"]  # fmt: skip
    for index in range(streams):
        command += ["--source", url, "--name", f"cam{index}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for _ in range(streams + 4):
        if process.stdout.readline().startswith("viewer: "):
            return process, port
    process.kill()
    raise RuntimeError("streamlab serve did not start")


def api_streams(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/streams", timeout=10) as reply:
        data = json.loads(reply.read())
    return list(data["streams"] if isinstance(data, dict) else data)


def sent_per_viewer(port: int) -> dict[str, int]:
    out = {}
    for stream in api_streams(port):
        viewers = stream.get("viewers") or []
        out[stream["name"]] = sum(int(v.get("frames_sent", 0)) for v in viewers)
    return out


def cpu_seconds(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def measure_step(
    loop: asyncio.AbstractEventLoop, url: str, streams: int, codec: str
) -> dict[str, Any]:
    """One rung of the ladder: a fresh server with ``streams`` streams, one viewer each."""
    process, port = serve(url, streams, codec)
    try:
        return loop.run_until_complete(measure(process.pid, port, streams))
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


async def measure(pid: int, port: int, streams: int) -> dict[str, Any]:
    clients: list[WhepClient] = []
    try:
        for index in range(streams):
            client = WhepClient(f"http://127.0.0.1:{port}/whep/cam{index}")
            clients.append(await client.connect(read_codes=False))
        await asyncio.sleep(WARMUP_S)
        before, cpu0, t0 = sent_per_viewer(port), cpu_seconds(pid), time.monotonic()
        received0 = [c.received.frames for c in clients]
        await asyncio.sleep(WINDOW_S)
        after, cpu1, t1 = sent_per_viewer(port), cpu_seconds(pid), time.monotonic()
        received = [c.received.frames - r for c, r in zip(clients, received0, strict=True)]
        elapsed = t1 - t0
        fps = [(after.get(name, 0) - before.get(name, 0)) / elapsed for name in after]
        analysed = [s.get("pipeline", {}).get("analysed", 0) for s in api_streams(port)]
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
    worst = min(fps) if fps else 0.0
    return {
        "streams": streams,
        "sent_fps_min": round(worst, 2),
        "sent_fps_mean": round(sum(fps) / max(len(fps), 1), 2),
        "received_fps_min": round(min(received) / elapsed, 2) if received else 0.0,
        "server_cpu_percent": round(100 * (cpu1 - cpu0) / elapsed, 1),
        "analysed_min": min(analysed) if analysed else 0,
        "sustained": worst >= FPS * (1 - LOSS),
    }


@pytest.mark.parametrize("codec", ["passthrough", "vp8"])
def test_capacity(benchmark, loop, file_camera: TestCamera, codec: str) -> None:  # type: ignore[no-untyped-def]
    steps: list[dict[str, Any]] = []

    def climb() -> None:
        for streams in LADDERS[codec]:
            step = measure_step(loop, file_camera.url, streams, codec)
            print(f"capacity {codec}: {step}", flush=True)
            steps.append(step)
            if not step["sustained"]:
                break

    benchmark.group = "capacity: 640x480@15 streams with motion analysis, one viewer each"
    benchmark.pedantic(climb, rounds=1, iterations=1)
    sustained = [s["streams"] for s in steps if s["sustained"]]
    benchmark.extra_info.update(
        codec=codec, max_streams=max(sustained, default=0), steps=steps, target_fps=FPS
    )
    assert steps and steps[0]["sent_fps_mean"] > 0  # the ladder measured something
