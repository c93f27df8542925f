"""One measurement of the frame path, run as its own process against any streamlab tree.

``python cheap_probe.py MODE URL --frames N [--isolation thread|process]`` prints one JSON
line: CPU seconds per frame of this process (decode, conversion, pipeline, analysis — not
the camera), delivered fps and, with analysis, the analysis lag. Run it with PYTHONPATH
pointing at another checkout of streamlab (``PYTHONPATH=PATH/TO/OTHER/CHECKOUT python
benchmarks/cheap_probe.py ...``) to get the "before" of a change side by side;
``benchmarks/test_bench_analysis.py`` does that when ``STREAMLAB_BEFORE_TREE`` names one.

Modes: ``source`` (RTSP source alone, every frame consumed), ``pipeline`` (a tap reads every
frame), ``motion`` / ``people`` (analysis on every frame), ``passthrough`` (only a consumer
that needs no pixels, like passthrough delivery).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from typing import Any

import streamlab as sl


def cpu_s() -> float:
    """CPU seconds of this process and its live children (an analysis worker process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    try:
        import psutil
    except ModuleNotFoundError:
        return total
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class Counter:
    """A sink that needs no pixels: counts frames (what passthrough delivery is)."""

    needs_pixels = False

    def __init__(self) -> None:
        self.count = 0
        self.arrived = asyncio.Event()

    def offer(self, frame: Any) -> None:
        self.count += 1
        self.arrived.set()

    def close(self) -> None:
        pass


def encoder_input(frame: Any) -> None:
    """What an encoder needs from a frame: yuv420p (BGR→YUV for a BGR frame)."""
    frame.to_av().reformat(format="yuv420p")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(mode: str, url: str, frames: int, warmup: int, isolation: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if mode in ("motion", "people"):
        settings = {"analyze": [mode], "skipping": "none", "overlay": False}
        if isolation != "thread":
            settings["analysis_isolation"] = isolation
    if mode == "source":
        source = sl.open_source(url)
        subscription = source.subscribe("block:8")
        source.start()
        try:
            for _ in range(warmup):
                await asyncio.wait_for(subscription.get(), 30)
            cpu0, t0 = cpu_s(), time.monotonic()
            for _ in range(frames):
                await asyncio.wait_for(subscription.get(), 30)
            cpu1, t1 = cpu_s(), time.monotonic()
        finally:
            source.stop()
        return {"cpu_ms_per_frame": 1000 * (cpu1 - cpu0) / frames, "fps": frames / (t1 - t0)}
    config = sl.load_config(buffering="latest", **settings)
    pipeline = sl.Pipeline(url, config=config)
    lags: list[float] = []

    def on_event(event: Any) -> None:
        lag = getattr(event, "analysis_lag_s", None)
        if type(event).__name__ == "FrameDelivered" and lag is not None and measuring:
            lags.append(lag * 1000)

    measuring = False
    pipeline.bus.subscribe(on_event)
    counter = Counter()
    pipeline.add_sink(counter)
    tap = None if mode == "passthrough" else pipeline.tap(maxsize=2)
    async with pipeline:

        async def until(n: int) -> None:
            async with asyncio.timeout(60):
                while counter.count < n:
                    counter.arrived.clear()
                    await counter.arrived.wait()
                    if tap is not None:
                        while not tap.queue.empty():
                            encoder_input(tap.queue.get_nowait())

        await until(warmup)
        measuring = True
        start = counter.count
        cpu0, t0 = cpu_s(), time.monotonic()
        analysed0 = pipeline.engine.completed
        await until(start + frames)
        cpu1, t1 = cpu_s(), time.monotonic()
        analysed = pipeline.engine.completed - analysed0
        stats = pipeline.stats()
    n = counter.count - start
    return {
        "cpu_ms_per_frame": 1000 * (cpu1 - cpu0) / n,
        "cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
        "fps": n / (t1 - t0),
        "analysed_fps": analysed / (t1 - t0),
        "lag_p50_ms": percentile(lags, 0.5),
        "lag_p95_ms": percentile(lags, 0.95),
        "detector_ms": stats.get("detector_ms", {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["source", "pipeline", "motion", "people", "passthrough"])
    parser.add_argument("url")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--isolation", default="thread")
    args = parser.parse_args()
    result = asyncio.run(run(args.mode, args.url, args.frames, args.warmup, args.isolation))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
