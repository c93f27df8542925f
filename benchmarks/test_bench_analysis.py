"""Analysis: per-detector cost by size; pipeline throughput and analysis lag per skipping strategy."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import streamlab as sl
from streamlab.analysis.detectors import DetectorPool, detectors
from streamlab.analysis.inputs import analyse
from streamlab.events import FrameDelivered
from streamlab.sources.synthetic import SyntheticScene


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.parametrize(("width", "height"), [(320, 240), (640, 480)])
@pytest.mark.parametrize("detector", ["motion", "people", "faces"])
def test_detector_cost(benchmark, detector: str, width: int, height: int) -> None:  # type: ignore[no-untyped-def]
    scene = SyntheticScene(width, height, objects=3)
    instance = detectors.create(detector)
    images = [scene.render(seq)[0] for seq in range(8)]
    counter = iter(range(10**9))

    def run() -> None:
        instance.detect(images[next(counter) % len(images)])

    benchmark.group = "detector cost per frame"
    benchmark.extra_info.update(detector=detector, size=f"{width}x{height}")
    benchmark.pedantic(run, rounds=20, iterations=1, warmup_rounds=2)


STRATEGIES = [
    "none",
    "every_nth:3",
    "target_fps:10",
    "adaptive:100",
    "motion_gated",
    "intervals:10,30",
]


@pytest.mark.parametrize("pace", ["unthrottled", "realtime"])
@pytest.mark.parametrize("skipping", STRATEGIES)
def test_pipeline_throughput_and_lag(benchmark, loop, skipping: str, pace: str) -> None:  # type: ignore[no-untyped-def]
    frames = 1500 if pace == "unthrottled" else 120
    figures: dict[str, float] = {}

    async def run() -> None:
        config = sl.load_config(analyze=["people"], skipping=skipping, buffering="block:8")
        realtime = int(pace == "realtime")
        url = f"synthetic://?size=640x480&fps=30&objects=3&realtime={realtime}&frames={frames}"
        pipeline = sl.Pipeline(url, config=config)
        with sl.EventRecorder(pipeline.bus, FrameDelivered) as recorder:
            started = time.perf_counter()
            await pipeline.start()
            await pipeline.wait()
            elapsed = time.perf_counter() - started
            stats = pipeline.stats()
            await pipeline.stop()
        lag = recorder.dataframe()["analysis_lag_s"].dropna() * 1000
        lag_frames = recorder.dataframe()["analysis_lag_frames"].dropna()
        figures.update(fps=stats["frames_out"] / elapsed, analysed=stats["analysed"],
                       lag_p50_ms=percentile(list(lag), 0.5) if len(lag) else float("nan"),
                       lag_p95_ms=percentile(list(lag), 0.95) if len(lag) else float("nan"),
                       lag_p95_frames=percentile(list(lag_frames), 0.95) if len(lag_frames) else float("nan"))  # fmt: skip

    benchmark.group = f"pipeline with people detection (640x480, {pace})"
    benchmark.pedantic(lambda: loop.run_until_complete(run()), rounds=1, iterations=1)
    benchmark.extra_info.update(
        skipping=skipping, pace=pace, frames=frames, **{k: round(v, 1) for k, v in figures.items()}
    )
    assert figures["fps"] > 0


# -- the cheap path, before/after and isolation (issue 8) -------------------------------

PROBE = Path(__file__).with_name("cheap_probe.py")
# The "before" of a comparison is another checkout of streamlab, named explicitly:
#   STREAMLAB_BEFORE_TREE=PATH/TO/OTHER/CHECKOUT .venv/bin/pytest \
#       benchmarks/test_bench_analysis.py -k before_after --benchmark-enable -s
# Unset, the "before" runs are skipped and the "after" runs (this tree) still measure.
BEFORE_TREE = os.environ.get("STREAMLAB_BEFORE_TREE", "")
TREES = {"before": BEFORE_TREE, "after": str(Path(__file__).resolve().parents[1])}


def probe(tree: str, mode: str, url: str, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run(
        [sys.executable, str(PROBE), mode, url, "--frames", "300", *extra],
        env=env, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("tree", ["before", "after"])
@pytest.mark.parametrize("mode", ["source", "pipeline", "passthrough", "motion", "people"])
def test_frame_path_cpu_before_after(benchmark, rtsp_camera, mode: str, tree: str) -> None:  # type: ignore[no-untyped-def]
    """CPU per frame of this process for the 640x480@30 camera: RTSP source alone, pipeline
    with an encoder's input (yuv420p), a consumer that needs no pixels, analysis on every
    frame. ``before`` runs the same probe against another checkout (STREAMLAB_BEFORE_TREE)."""
    if tree == "before" and not BEFORE_TREE:
        pytest.skip("no 'before' tree: set STREAMLAB_BEFORE_TREE to another streamlab checkout")
    if not Path(TREES[tree], "streamlab").is_dir():
        pytest.fail(f"STREAMLAB_BEFORE_TREE={TREES[tree]!r} is not a streamlab checkout")
    figures: dict[str, Any] = {}
    benchmark.group = f"frame path CPU per frame: {mode} (640x480@30 RTSP)"
    benchmark.pedantic(
        lambda: figures.update(probe(TREES[tree], mode, rtsp_camera.url)), rounds=1, iterations=1
    )
    benchmark.extra_info.update(mode=mode, tree=tree, **figures)
    print(f"frame path {mode} {tree}: {figures}", flush=True)
    assert figures["fps"] > 0


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_people_on_every_frame_threads_vs_process(benchmark, rtsp_camera, isolation: str) -> None:  # type: ignore[no-untyped-def]
    """People detection on every frame of the 640x480@30 camera: delivered fps, analysis
    rate and lag, CPU (worker included) — threads vs a worker process."""
    figures: dict[str, Any] = {}
    tree = TREES["after"]
    benchmark.group = "people on every frame: analysis isolation (640x480@30 RTSP)"
    benchmark.pedantic(
        lambda: figures.update(
            probe(tree, "people", rtsp_camera.url, "--isolation", isolation)
        ),
        rounds=1, iterations=1,
    )  # fmt: skip
    benchmark.extra_info.update(isolation=isolation, **figures)
    print(f"people probe {isolation}: {figures}", flush=True)
    assert figures["fps"] > 0


@pytest.mark.parametrize("size", [320, 480, 640])
@pytest.mark.parametrize("detector", ["motion", "people", "faces"])
def test_detector_cost_at_analysis_size(benchmark, detector: str, size: int) -> None:  # type: ignore[no-untyped-def]
    """Detector ms on a 640x480 frame's planes at ``analysis_size`` (what the engine runs)."""
    scene = SyntheticScene(640, 480, objects=3)
    frames = [sl.Frame(scene.render(seq)[0], seq, seq, Fraction(1, 30), 0.0) for seq in range(8)]
    for frame in frames:
        frame.i420()  # as a decoded frame: planes exist, BGR does not matter
    pool = DetectorPool(1)
    counter = iter(range(10**9))

    def run() -> None:
        frame = frames[next(counter) % len(frames)]
        fresh = sl.Frame.from_i420(frame.i420(), frame.seq, 0, Fraction(1, 30), 0.0)
        analyse(pool, fresh, (detector,), max_width=size, hide_code=True)

    benchmark.group = "detector cost per frame at analysis_size (640x480 planes)"
    benchmark.extra_info.update(detector=detector, analysis_size=size)
    benchmark.pedantic(run, rounds=20, iterations=1, warmup_rounds=2)


@pytest.mark.parametrize(
    ("isolation", "size"), [("thread", 640), ("process", 640), ("thread", 320)]
)
def test_people_served_threads_vs_process(
    benchmark, loop, rtsp_camera, isolation: str, size: int
) -> None:  # type: ignore[no-untyped-def]
    """The worst case on 2 cores: camera, ``streamlab serve`` (VP8, people on every frame)
    and an aiortc viewer on one machine. Viewer fps, frame-code latency, analysis lag
    (frames, from the data channel) and server CPU, threads vs worker process, and a
    smaller ``analysis_size``."""
    import psutil
    from servers import server, summary

    from streamlab.webrtc.client import WhepClient

    figures: dict[str, Any] = {}

    async def window(url: str, pid: int) -> None:
        client = await WhepClient(url).connect()
        await client.wait_frames(60, within_s=60)
        await asyncio.sleep(3)
        frames0, codes0 = client.received.frames, len(client.received.latencies_ms)
        messages0 = len(client.received.messages)
        processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        cpu0 = sum(sum(p.cpu_times()[:2]) for p in processes)
        started = time.monotonic()
        await asyncio.sleep(15)
        elapsed = time.monotonic() - started
        processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        cpu1 = sum(sum(p.cpu_times()[:2]) for p in processes)
        lags = [m.get("lag_frames") for m in client.received.messages[messages0:]]
        lag_frames = [float(v) for v in lags if isinstance(v, int | float)]
        figures.update(
            fps=round((client.received.frames - frames0) / elapsed, 2),
            **summary(client.received.latencies_ms[codes0:]),
            lag_p50_frames=percentile(lag_frames, 0.5) if lag_frames else float("nan"),
            lag_p95_frames=percentile(lag_frames, 0.95) if lag_frames else float("nan"),
            server_cpu_percent=round(100 * (cpu1 - cpu0) / elapsed, 1),
        )
        await client.close()

    def run() -> None:
        settings = {"STREAMING_ANALYSIS_ISOLATION": isolation, "STREAMING_ANALYSIS_SIZE": str(size)}
        previous = {k: os.environ.get(k) for k in settings}
        os.environ.update(settings)
        try:
            with server("streamlab", rtsp_camera.url, codec="vp8", people=True) as (url, pid):
                loop.run_until_complete(window(url, pid))
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    benchmark.group = "served VP8 + people on every frame: analysis isolation (640x480@30)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(isolation=isolation, analysis_size=size, **figures)
    print(f"people served {isolation} at {size}: {figures}", flush=True)
    assert figures["fps"] > 0
