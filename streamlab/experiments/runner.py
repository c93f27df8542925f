"""Run scenarios: conditions, source, server (or baseline) as a process, viewers, samples.

One run of one scenario = start the CPU load, the camera (shared per run), the server
process; connect the viewers; warm up; measure ``duration_s``; stop everything. Every
second it samples the server's ``GET /api/streams``, its CPU and RSS (psutil on its PID)
and each viewer's received kbit/s, so reports can draw time series.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import psutil

from streamlab.errors import StreamlabError
from streamlab.experiments import measure
from streamlab.experiments.baselines import ffmpeg_command
from streamlab.experiments.conditions import CpuLoad
from streamlab.experiments.processes import HOSTS, CameraPool, Child
from streamlab.experiments.scenario import Scenario

Tick = Callable[[float], None]  # seconds of scenario time done (for a progress bar)
START_S = 2.0  # rough start-up cost of one run, for progress estimates


@dataclass
class RunResult:
    """One repeat of one scenario: its metrics, raw latencies, time series, or an error."""

    scenario: dict[str, Any]
    repeat: int
    metrics: dict[str, Any] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    started: float = 0.0
    finished: float = 0.0
    runner_pid: int = 0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def name(self) -> str:
        return str(self.scenario["name"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        data = dict(data)
        data["load_before"] = tuple(data.get("load_before", (0.0, 0.0, 0.0)))
        return cls(**data)


def run_seconds(scenario: Scenario) -> float:
    return scenario.warmup_s + scenario.duration_s + START_S


def run_one(
    scenario: Scenario, repeat: int = 0, *, cameras: CameraPool | None = None,
    tick: Tick | None = None,
) -> RunResult:  # fmt: skip
    """Measure one repeat of ``scenario``; errors end up in ``result.error`` as one line."""
    result = RunResult(scenario.to_dict(), repeat, started=time.time(), runner_pid=os.getpid(),
                       load_before=psutil.getloadavg())  # fmt: skip
    own = cameras is None
    pool = cameras or CameraPool()
    try:
        with CpuLoad(scenario.cpu_load):
            source = pool.url(scenario.source)
            _run_coroutine(_measure(scenario, source, result, tick or (lambda s: None)))
    except (StreamlabError, OSError, TimeoutError, RuntimeError) as exc:
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    finally:
        if own:
            pool.close()
        result.finished = time.time()
    return result


def _run_coroutine(coroutine: Any) -> None:
    """``asyncio.run`` — in a helper thread when this thread already runs a loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="experiment") as pool:
        pool.submit(asyncio.run, coroutine).result()


def run_table(table: dict[str, Any], repeat: int) -> dict[str, Any]:
    """``run_one`` on plain data (what a Dask worker receives and returns)."""
    return run_one(Scenario.from_table(table), repeat).to_dict()


def run_all(
    scenarios: Iterable[Scenario], repeat: int = 1, *, progress: bool = True
) -> list[RunResult]:
    """Every scenario times its repeats, one after another on this machine, with a tqdm bar."""
    from tqdm.auto import tqdm

    plan = [(s, r) for s in scenarios for r in range(s.repeat or repeat)]
    total = sum(run_seconds(s) for s, _ in plan)
    results: list[RunResult] = []
    bar_format = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}"
    bar_format += "{postfix}]"
    with CameraPool() as cameras, tqdm(total=round(total), disable=not progress, desc="bench",
                                       bar_format=bar_format) as bar:  # fmt: skip
        for scenario, index in plan:
            bar.set_postfix_str(f"{scenario.name} #{index + 1}", refresh=True)
            done = [0.0]

            def tick(seconds: float, done: list[float] = done) -> None:
                bar.update(seconds)
                done[0] += seconds

            results.append(run_one(scenario, index, cameras=cameras, tick=tick))
            bar.update(max(0.0, run_seconds(scenario) - done[0]))
            if results[-1].error:
                bar.write(f"{scenario.name}: {results[-1].error}")
    return results


async def _measure(scenario: Scenario, source: str, result: RunResult, tick: Tick) -> None:
    if scenario.baseline in ("ffmpeg", "pyav"):
        await _measure_transcode(scenario, source, result, tick)
        return
    if scenario.baseline == "restreamer":
        from streamlab.camera.launcher import free_port

        command = [*HOSTS, "restreamer", "--source", source, "--port", str(free_port()),
                   "--network", scenario.network]  # fmt: skip
    else:
        command = [*HOSTS, "serve", "--source", source, "--settings",
                   json.dumps(scenario.settings)]  # fmt: skip
    with contextlib.ExitStack() as stack:
        reference = None
        if _scores(scenario):
            reference = stack.enter_context(reference_folder())
            command += ["--reference", reference]
        child = stack.enter_context(Child(command, what=f"{scenario.system} server"))
        base = await asyncio.to_thread(child.ready, "viewer:", 40.0)  # waits on a Condition
        await _measure_viewers(scenario, base, child, result, tick, reference)


def _scores(scenario: Scenario) -> bool:
    """Whether the run keeps reference frames: aiortc viewers of streamlab's own server,
    and not for passthrough (the reference would make the server decode what it only
    forwards, a cost the scenario is there to show it does not pay)."""
    return (
        scenario.measure_quality and not scenario.baseline and scenario.viewer == "aiortc"
        and str(scenario.settings.get("codec", "")) != "passthrough"
    )  # fmt: skip


def reference_folder() -> tempfile.TemporaryDirectory[str]:
    """A scratch folder for the server's reference frames: in memory (/dev/shm) when the
    machine has it, so the ring costs no disk writes; removed after the run."""
    shm = "/dev/shm"
    where = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.TemporaryDirectory(prefix="streamlab-reference-", dir=where)


async def _measure_viewers(
    scenario: Scenario, base: str, child: Child, result: RunResult, tick: Tick,
    reference: str | None = None,
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
                for _ in range(scenario.viewers):
                    viewer = measure.AiortcViewer(f"{base}whep/cam", reference=reference)
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
                return _row(stream, process, logs, window_start)

            series: list[dict[str, Any]] = []
            connected = measure.epoch_ms()
            first = await measure.fetch_json(http, base + "api/streams")
            await _seconds(scenario.warmup_s, tick, series, sample, connected)
            window_start = measure.epoch_ms()
            stages_before = await measure.stage_totals(http, base)
            api_before = await measure.fetch_json(http, base + "api/streams")
            cpu_before = process.cpu_times()
            await _seconds(scenario.duration_s, tick, series, sample, window_start)
            window_end = measure.epoch_ms()
            cpu_after = process.cpu_times()
            rss_mb = process.memory_info().rss / 2**20
            stages_after = await measure.stage_totals(http, base)
            api_after = await measure.fetch_json(http, base + "api/streams")
        finally:
            for viewer in aiortc:
                await viewer.close()
            if browser is not None:
                await browser.close()
    offered = _offered(reference)
    windowed = [log.window(window_start, window_end) for log in logs]
    seconds = (window_end - window_start) / 1000
    busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    result.latencies_ms = [round(v, 1) for log in windowed for _, v in log.latencies]
    result.series = _rezero(series, window_start)
    result.metrics = _metrics(windowed, seconds, busy, rss_mb, series, connected)
    result.metrics.update(_seen(windowed, offered))
    if aiortc and reference:
        result.metrics["quality_skipped"] = sum(v.scorer.stats.skipped for v in aiortc if v.scorer)
    result.metrics["stage_ms"] = measure.stage_means(stages_before, stages_after)
    result.metrics["dropped"] = _dropped(api_before, api_after)
    result.metrics["quality_changes"] = _quality_changes(first, api_after, series)
    if aiortc:  # freezes the aiortc viewer broke by dropping frames and asking for a keyframe
        result.metrics["viewer_recoveries"] = sum(int(getattr(v, "recoveries", 0)) for v in aiortc)


async def _seconds(
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


def _offered(reference: str | None) -> list[int] | None:
    """The seqs the server's encoders were given (None without a reference)."""
    if not reference:
        return None
    from streamlab.quality.reference import ReferenceReader

    with ReferenceReader(reference) as reader:
        return [int(s) for s in reader.offered()]


def _seen(logs: list[measure.ViewerLog], offered: list[int] | None) -> dict[str, Any]:
    """What the viewers saw in the window: PSNR / SSIM when scored, smoothness always (from
    arrivals alone when a viewer logs no seqs, e.g. Chromium)."""
    from streamlab.quality.smoothness import Shown
    from streamlab.quality.summary import quality_figures, smoothness_figures

    shown = [log.shown or [Shown(a, None, 0, 0) for a in log.arrivals] for log in logs]
    coded = sum(1 for frames in shown for f in frames if f.seq is not None)
    out = smoothness_figures(shown, offered)
    out.update(quality_figures([q for log in logs for q in log.quality], coded))
    return out


def _rezero(series: list[dict[str, Any]], zero: float) -> list[dict[str, Any]]:
    """Time of each sample in seconds from the end of warm-up (negative during warm-up)."""
    for row in series:
        row["t"] = round((row.pop("at") - zero) / 1000, 2)
    return series


def _row(
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


def _recent_psnr(log: measure.ViewerLog, now: float) -> float | None:
    """Mean PSNR-Y of the frames scored in the last second (None if none)."""
    recent = [q.psnr_y for q in log.quality[-120:] if q.at_ms > now - 1000]
    return round(sum(recent) / len(recent), 2) if recent else None


def _metrics(
    logs: list[measure.ViewerLog], seconds: float, busy: float, rss_mb: float,
    series: list[dict[str, Any]], connected: float,
) -> dict[str, Any]:  # fmt: skip
    latencies = [v for log in logs for _, v in log.latencies]
    p50, p95, p99 = measure.percentiles(latencies)
    gaps = [measure.gaps(log.arrivals) for log in logs]
    (interval_p95,) = measure.percentiles(
        [i for log in logs for i in measure.intervals(log.arrivals)], (95,)
    )
    window = [row for row in series if row["t"] >= 0]
    lags = [row["analysis_lag_ms"] for row in window if row.get("analysis_lag_ms") is not None]
    lag50, lag95 = measure.percentiles(lags, (50, 95))
    kbps = [k for log in logs for _, k in log.kbps]
    fps = [len(log.arrivals) / seconds for log in logs] if seconds > 0 else []
    return {
        "latency_p50_ms": p50, "latency_p95_ms": p95, "latency_p99_ms": p99,
        "frames": len(latencies),
        "fps": round(sum(fps) / len(fps), 2) if fps else None,
        "freezes": sum(g[0] for g in gaps),
        "max_gap_ms": max((g[1] for g in gaps), default=None),
        "interval_p95_ms": interval_p95,
        "kbps": round(sum(kbps) / len(kbps), 1) if kbps else None,
        "analysis_lag_p50_ms": lag50, "analysis_lag_p95_ms": lag95,
        "cpu_percent": round(100 * busy / seconds, 1) if seconds > 0 else None,
        "rss_mb": round(rss_mb, 1),
        "time_to_settle_s": _settle(series, connected),
    }  # fmt: skip


def _dropped(before: Any, after: Any) -> dict[str, float]:
    def first(api: Any) -> dict[str, Any]:
        return (api or {}).get("streams", [{}])[0] if api else {}

    start, end = measure.counters(first(before)), measure.counters(first(after))
    return {k: round(v - start.get(k, 0), 1) for k, v in end.items() if v - start.get(k, 0)}


def _quality_changes(first: Any, last: Any, series: list[dict[str, Any]]) -> int:
    """From the viewers' own counters when the server reports them, else rung changes seen."""

    def total(api: Any) -> int | None:
        stream = (api or {}).get("streams", [{}])[0] if api else {}
        viewers = [v for v in stream.get("viewers") or [] if isinstance(v, dict)]
        counts = [int(v["quality_changes"]) for v in viewers
                  if isinstance(v.get("quality_changes"), int)]  # fmt: skip
        return sum(counts) if counts else None

    end = total(last)
    if end is not None:
        return end - (total(first) or 0)
    changes, previous = 0, None
    for row in series:
        rungs = row.get("rungs") or []
        if previous is not None and len(rungs) == len(previous):
            changes += sum(1 for a, b in zip(previous, rungs, strict=True) if a != b)
        previous = rungs
    return changes


def _settle(series: list[dict[str, Any]], connected: float) -> float | None:
    """Seconds from the viewers' connection to the last rung change (0: never changed)."""
    rows = [r for r in series if r.get("rungs")]
    if not rows:
        return None
    last = rows[0]["t"]
    first_t = rows[0]["t"]
    for before, after in itertools.pairwise(rows):
        if before["rungs"] != after["rungs"]:
            last = after["t"]
    return round(max(0.0, last - first_t), 1)


async def _measure_transcode(
    scenario: Scenario, source: str, result: RunResult, tick: Tick
) -> None:
    codec = str(scenario.settings.get("codec", "vp8"))
    codec = codec if codec in ("vp8", "h264") else "vp8"
    if scenario.baseline == "ffmpeg":
        command = ffmpeg_command(source, codec)
    else:
        command = [*HOSTS, "pyav", "--source", source, "--codec", codec]
    frames = [0]

    def on_line(line: str) -> None:
        if line.startswith("frame="):
            frames[0] = int(line.split("=", 1)[1] or 0)

    with Child(command, what=f"{scenario.baseline} baseline") as child:
        child.on_line = on_line
        await asyncio.to_thread(child.ready, "frame=", 40.0)
        process = psutil.Process(child.pid)
        process.cpu_percent(None)
        series: list[dict[str, Any]] = []

        async def sample(zero: float) -> dict[str, Any]:
            return {"t": round((measure.epoch_ms() - zero) / 1000, 2), "at": measure.epoch_ms(),
                    "cpu_percent": process.cpu_percent(None),
                    "rss_mb": round(process.memory_info().rss / 2**20, 1),
                    "frames": frames[0]}  # fmt: skip

        await _seconds(scenario.warmup_s, tick, series, sample, measure.epoch_ms())
        start, frames_before, cpu_before = measure.epoch_ms(), frames[0], process.cpu_times()
        await _seconds(scenario.duration_s, tick, series, sample, start)
        seconds = (measure.epoch_ms() - start) / 1000
        cpu_after, frames_after = process.cpu_times(), frames[0]
        rss_mb = process.memory_info().rss / 2**20
    busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    result.series = _rezero(series, start)
    result.metrics = {
        "fps": round((frames_after - frames_before) / seconds, 2),
        "cpu_percent": round(100 * busy / seconds, 1),
        "rss_mb": round(rss_mb, 1),
    }
