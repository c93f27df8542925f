"""Measure a running server through its viewers (aiortc or Chromium): connect them, warm
up, sample every second through the window, then fill the run's result. With ``video_dir``
the first aiortc viewer saves the pairs it scored inside the window there."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
import psutil

from streamlab.experiments import measure, metrics
from streamlab.experiments.processes import Child
from streamlab.experiments.sampling import Tick, rezero, sample_seconds, server_row
from streamlab.experiments.scenario import Scenario

if TYPE_CHECKING:
    from streamlab.experiments.runner import RunResult


async def measure_viewers(
    scenario: Scenario, base: str, child: Child, result: RunResult, tick: Tick,
    reference: str | None = None, video_dir: str | None = None,
) -> None:  # fmt: skip
    process = psutil.Process(child.pid)
    process.cpu_percent(None)
    aiortc: list[measure.AiortcViewer] = []
    browser: measure.ChromiumViewers | None = None
    async with aiohttp.ClientSession() as http:
        try:
            if scenario.viewer == "chromium" and scenario.viewers:
                browser = measure.ChromiumViewers(base, scenario.viewers)
                await browser.start()
                logs = browser.logs
            else:
                for index in range(scenario.viewers):
                    saves = video_dir if index == 0 else None
                    viewer = measure.AiortcViewer(f"{base}whep/cam", reference=reference,
                                                  save_video=saves)  # fmt: skip
                    await viewer.connect()
                    aiortc.append(viewer)
                await asyncio.gather(*(v.wait_frames(1, 30.0) for v in aiortc))
                logs = [v.log for v in aiortc]

            async def sample(window_start: float) -> dict[str, Any]:
                for viewer in aiortc:
                    await viewer.sample()
                if browser is not None:
                    await browser.sample()
                api = await measure.fetch_json(http, base + "api/streams")
                stream = (api or {}).get("streams", [{}])[0] if api else {}
                return server_row(stream, process, logs, window_start)

            series: list[dict[str, Any]] = []
            connected = measure.epoch_ms()
            first = await measure.fetch_json(http, base + "api/streams")
            await sample_seconds(scenario.warmup_s, tick, series, sample, connected)
            window_start = measure.epoch_ms()
            pair = aiortc[0].pair if aiortc else None
            if pair is not None:
                pair.open_window(window_start)
            stages_before = await measure.stage_totals(http, base)
            api_before = await measure.fetch_json(http, base + "api/streams")
            cpu_before = process.cpu_times()
            await sample_seconds(scenario.duration_s, tick, series, sample, window_start)
            window_end = measure.epoch_ms()
            if pair is not None:
                pair.close_window(window_end)  # before the next await: no later frame slips in
            cpu_after = process.cpu_times()
            rss_mb = process.memory_info().rss / 2**20
            stages_after = await measure.stage_totals(http, base)
            api_after = await measure.fetch_json(http, base + "api/streams")
        finally:
            for viewer in aiortc:
                await viewer.close()
            if browser is not None:
                await browser.close()
    offered = metrics.offered(reference)
    windowed = [log.window(window_start, window_end) for log in logs]
    seconds = (window_end - window_start) / 1000
    busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    result.latencies_ms = [round(v, 1) for log in windowed for _, v in log.latencies]
    result.series = rezero(series, window_start)
    result.metrics = metrics.summary(windowed, seconds, busy, rss_mb, series, connected)
    result.metrics.update(metrics.seen(windowed, offered))
    if aiortc and reference:
        result.metrics["quality_skipped"] = sum(v.scorer.stats.skipped for v in aiortc if v.scorer)
    if aiortc and aiortc[0].pair is not None:
        result.metrics["video_frames"] = aiortc[0].pair.stats.written
        result.metrics["video_dropped"] = aiortc[0].pair.stats.dropped
    result.metrics["stage_ms"] = measure.stage_means(stages_before, stages_after)
    result.metrics["dropped"] = metrics.dropped(api_before, api_after)
    result.metrics["quality_changes"] = metrics.quality_changes(first, api_after, series)
    if aiortc:  # freezes the aiortc viewer broke by dropping frames and asking for a keyframe
        result.metrics["viewer_recoveries"] = sum(int(getattr(v, "recoveries", 0)) for v in aiortc)
