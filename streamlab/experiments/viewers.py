"""Measure a running server through its viewers (aiortc or Chromium): connect them, warm
up, sample every second through the window, then fill the run's result. With ``video_dir``
the first aiortc viewer saves the pairs it scored inside the window there. With a
reference, aiortc viewers score every frame they can, Chromium pages a canvas sample about
once a second (the ``canvas_*`` keys say how many)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np
import psutil

from streamlab.experiments import av_sync, measure, metrics
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
                browser = measure.ChromiumViewers(base, scenario.viewers, reference=reference)
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
    if browser is not None and browser.canvases:
        result.metrics.update(canvas_figures(browser, result.metrics, window_start, window_end))
    if any(log.clicks or log.marks for log in windowed):
        result.metrics.update(av_sync.figures(windowed))
    if aiortc and aiortc[0].pair is not None:
        result.metrics["video_frames"] = aiortc[0].pair.stats.written
        result.metrics["video_dropped"] = aiortc[0].pair.stats.dropped
    result.metrics["stage_ms"] = measure.stage_means(stages_before, stages_after)
    result.metrics["dropped"] = metrics.dropped(api_before, api_after)
    result.metrics["quality_changes"] = metrics.quality_changes(first, api_after, series)
    if aiortc:  # freezes the aiortc viewer broke by dropping frames and asking for a keyframe
        result.metrics["viewer_recoveries"] = sum(int(getattr(v, "recoveries", 0)) for v in aiortc)


def canvas_figures(
    browser: measure.ChromiumViewers, figures: dict[str, Any], start: float, end: float
) -> dict[str, Any]:
    """Chromium's canvas samples in the window: ``quality_sampled`` = scored / frames whose
    code the pages read; samples taken (per page and second: about 1), unreadable, the
    scorer's skips, the grabs that overlapped (``canvas_busy``, whole run), and the median
    cost of a grab in the page: its main thread's part and the whole (ms)."""
    samples = [s for c in browser.canvases for s in c.samples if start <= s.at_ms < end]
    seconds = (end - start) / 1000
    frames, scored = figures.get("frames") or 0, figures.get("quality_frames") or 0
    return {
        "quality_sampled": round(scored / frames, 3) if frames else None,
        "quality_skipped": sum(c.scorer.stats.skipped for c in browser.canvases),
        "canvas_samples": len(samples),
        "canvas_samples_per_s": round(len(samples) / seconds / len(browser.canvases), 2)
        if seconds > 0 else None,
        "canvas_unreadable": sum(1 for s in samples if s.seq is None),
        "canvas_busy": browser.busy,
        "canvas_main_ms": round(float(np.median([s.main_ms for s in samples])), 2)
        if samples else None,
        "canvas_grab_ms": round(float(np.median([s.grab_ms for s in samples])), 1)
        if samples else None,
    }  # fmt: skip
