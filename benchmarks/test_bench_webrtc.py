"""WebRTC delivery against the usual aiortc setup, on the same real RTSP camera.

Latency is read from the frame code at an aiortc receiver, which holds each frame until the
next frame's first packet arrives (about one frame interval, ~33 ms at 30 fps); both
sides pay it, so the comparison is fair.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import av
import psutil
import pytest
from servers import server, summary

from streamlab.strategies.quality import level
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.encoder import SharedEncoder

CLIP = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "car-detection.mp4"



async def latency_window(url: str, seconds: float) -> tuple[list[float], float]:
    client = await WhepClient(url).connect()
    await client.wait_frames(30)
    start_frames, start_codes = client.received.frames, len(client.received.latencies_ms)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    latencies = client.received.latencies_ms[start_codes:]
    fps = (client.received.frames - start_frames) / elapsed
    await client.close()
    return latencies, fps


SCENARIOS = [
    ("streamlab", "vp8", False),
    ("streamlab", "vp8", True),
    ("streamlab", "h264", False),
    ("streamlab", "passthrough", False),
    ("baseline", "vp8", False),
    ("baseline", "vp8", True),
]


@pytest.mark.parametrize(("kind", "codec", "people"), SCENARIOS)
def test_latency_at_an_aiortc_receiver(benchmark, loop, rtsp_camera, kind, codec, people) -> None:  # type: ignore[no-untyped-def]
    results: list[tuple[list[float], float]] = []

    def run() -> None:
        with server(kind, rtsp_camera.url, codec=codec, people=people) as (url, _):
            results.append(loop.run_until_complete(latency_window(url, 8.0)))

    benchmark.group = "glass-to-glass latency (aiortc receiver)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    latencies, fps = results[0]
    benchmark.extra_info.update(system=kind, codec=codec, analysis="people" if people else "none",
                                fps=round(fps, 1), frames=len(latencies), **summary(latencies))  # fmt: skip
    assert len(latencies) > 50


async def connect_viewers(url: str, count: int) -> list[WhepClient]:
    clients = [await WhepClient(url).connect(read_codes=False) for _ in range(count)]
    await asyncio.gather(*(c.wait_frames(15) for c in clients))
    return clients


@pytest.mark.parametrize("viewers", [1, 4, 8])
@pytest.mark.parametrize("kind", ["streamlab", "baseline"])
def test_server_cpu_per_viewer_count(benchmark, loop, rtsp_camera, kind, viewers) -> None:  # type: ignore[no-untyped-def]
    measured: list[float] = []

    def run() -> None:
        with server(kind, rtsp_camera.url, codec="vp8") as (url, pid):
            clients = loop.run_until_complete(connect_viewers(url, viewers))
            process = psutil.Process(pid)
            loop.run_until_complete(asyncio.sleep(1.0))
            before = process.cpu_times()
            loop.run_until_complete(asyncio.sleep(5.0))
            after = process.cpu_times()
            measured.append(
                100 * ((after.user - before.user) + (after.system - before.system)) / 5.0
            )
            for client in clients:
                loop.run_until_complete(client.close())

    benchmark.group = "server CPU by viewers (vp8)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(system=kind, viewers=viewers, cpu_percent=round(measured[0], 1))
    assert measured[0] > 0


@pytest.mark.skipif(not CLIP.exists(), reason="shared clip missing")
@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_transcode_throughput_vs_ffmpeg(benchmark, codec: str) -> None:  # type: ignore[no-untyped-def]
    encoder_name = "libvpx" if codec == "vp8" else "libx264"
    rung = level("1280x720")
    with av.open(str(CLIP)) as container:
        images = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    bitrate = rung.bitrate

    def ours() -> None:
        encoder = SharedEncoder(encoder_name)
        for pts, image in enumerate(images):
            encoder.encode(image, pts * 3000, rung, keyframe=pts == 0)

    benchmark.group = "transcode throughput"
    benchmark.pedantic(ours, rounds=2, iterations=1)
    ours_fps = len(images) / benchmark.stats.stats.min
    options = (["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0"]
               if codec == "vp8" else
               ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0"])  # fmt: skip
    started = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(CLIP), "-an", *options,
                    "-b:v", str(bitrate), "-threads", "2", "-f", "null", "-"], check=True)  # fmt: skip
    ffmpeg_fps = len(images) / (time.perf_counter() - started)
    benchmark.extra_info.update(codec=codec, size="768x432", frames=len(images),
                                streamlab_fps=round(ours_fps, 1), ffmpeg_fps=round(ffmpeg_fps, 1),
                                ratio=round(ours_fps / ffmpeg_fps, 2))  # fmt: skip
