"""Once-a-second samples of a run: the sampling loop, one row of the server's and viewers'
state, and sample times from the end of warm-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psutil

from streamlab.experiments import measure

Tick = Callable[[float], None]  # seconds of scenario time done (for a progress bar)


async def sample_seconds(
    duration: float, tick: Tick, series: list[dict[str, Any]],
    sample: Callable[[float], Any], zero: float,
) -> None:  # fmt: skip
    """Sleep ``duration`` seconds in one-second steps, sampling after each step."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    while (left := end - loop.time()) > 0:
        step = min(1.0, left)
        await asyncio.sleep(step)
        row = await sample(zero)
        series.append(row)
        tick(step)


def rezero(series: list[dict[str, Any]], zero: float) -> list[dict[str, Any]]:
    """Time of each sample in seconds from the end of warm-up (negative during warm-up)."""
    for row in series:
        row["t"] = round((row.pop("at") - zero) / 1000, 2)
    return series


def server_row(
    stream: dict[str, Any], process: psutil.Process, logs: list[measure.ViewerLog], zero: float
) -> dict[str, Any]:
    now = measure.epoch_ms()
    pipeline = stream.get("pipeline") or {}
    viewers = [v for v in stream.get("viewers") or [] if isinstance(v, dict)]
    return {
        "t": round((now - zero) / 1000, 2),
        "at": now,
        "cpu_percent": process.cpu_percent(None),
        "rss_mb": round(process.memory_info().rss / 2**20, 1),
        "fps_out": pipeline.get("fps_out"),
        "analysis_lag_ms": pipeline.get("analysis_lag_ms"),
        "rx_fps": [sum(1 for a in log.arrivals if a > now - 1000) for log in logs],
        "rx_kbps": [log.kbps[-1][1] if log.kbps else None for log in logs],
        "psnr_y": [_recent_psnr(log, now) for log in logs],
        "rungs": [v.get("rung") for v in viewers],
        "kbps": [v.get("kbps") for v in viewers],
    }


SPARSE_WINDOW_MS = 2500  # a Chromium viewer's canvas is sampled once a second, scored later


def _recent_psnr(log: measure.ViewerLog, now: float) -> float | None:
    """Mean PSNR-Y of the frames scored in the last second; for a viewer sampled sparsely
    (Chromium: a canvas sample a second, scored in a thread after it was grabbed) the
    latest score of the last 2.5 s (None if none)."""
    scored = log.quality[-120:]
    recent = [q.psnr_y for q in scored if q.at_ms > now - 1000]
    if not recent:
        recent = [q.psnr_y for q in scored[-1:] if q.at_ms > now - SPARSE_WINDOW_MS]
    return round(sum(recent) / len(recent), 2) if recent else None
