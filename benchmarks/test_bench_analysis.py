"""Analysis: per-detector cost by size; pipeline throughput and analysis lag per skipping strategy."""

from __future__ import annotations

import time

import pytest

import streamlab as sl
from streamlab.analysis.detectors import detectors
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
