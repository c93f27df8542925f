"""Run scenarios: conditions, source, server (or baseline) as a process, then measure it.

One run of one scenario = start the CPU load, the camera (shared per run), the server
process; connect the viewers and measure them (``viewers``, sampled every second by
``sampling``); stop everything. Baselines (ffmpeg, PyAV) are measured here by the frames
they report, their CPU and RSS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from streamlab.errors import StreamlabError
from streamlab.experiments import measure
from streamlab.experiments.baselines import ffmpeg_command
from streamlab.experiments.conditions import CpuLoad
from streamlab.experiments.processes import HOSTS, CameraPool, Child
from streamlab.experiments.sampling import Tick, rezero, sample_seconds
from streamlab.experiments.scenario import Scenario
from streamlab.experiments.viewers import measure_viewers

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
    video_dir: str = ""  # the saved pair (save_video); ``results.write`` moves it beside the JSON

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
        if result.video_dir:  # a pair without figures: nothing to compare it with
            shutil.rmtree(result.video_dir, ignore_errors=True)
            result.video_dir = ""
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
        reference = video_dir = None
        if _scores(scenario) or _taps(scenario, source):
            reference = stack.enter_context(reference_folder())
            if scenario.save_video:
                video_dir = result.video_dir = tempfile.mkdtemp(prefix="streamlab-video-")
        if _scores(scenario):
            command += ["--reference", str(reference)]
        elif reference is not None:  # a tap of its own: the server under test pays nothing
            tap = [*HOSTS, "serve", "--source", source, "--name", "reference",
                   "--reference", reference]  # fmt: skip
            tapped = stack.enter_context(Child(tap, what="reference tap"))
            await asyncio.to_thread(tapped.ready, "viewer:", 40.0)
        child = stack.enter_context(Child(command, what=f"{scenario.system} server"))
        base = await asyncio.to_thread(child.ready, "viewer:", 40.0)  # waits on a Condition
        await measure_viewers(scenario, base, child, result, tick, reference, video_dir)
    if video_dir:  # after the server stopped; ffmpeg in a thread, with a timeout
        from streamlab.quality.vmaf import mean_or_none

        vmaf = await asyncio.to_thread(mean_or_none, video_dir)
        if vmaf is not None:
            result.metrics["vmaf_mean"] = vmaf


def _scores(scenario: Scenario) -> bool:
    """Whether the run keeps reference frames: viewers of streamlab's own server (aiortc
    ones score every frame, Chromium pages a canvas sample a second), and not for
    passthrough (the reference would make the server decode what it only forwards, a cost
    the scenario is there to show it does not pay)."""
    return (
        scenario.measure_quality and not scenario.baseline
        and str(scenario.settings.get("codec", "")) != "passthrough"
    )  # fmt: skip


def _taps(scenario: Scenario, source: str) -> bool:
    """Whether the run scores its viewers against a reference tap: the camera decoded by a
    process of its own, keyed by the camera's frame codes (the restreamer, and streamlab's
    passthrough, which never decodes what it forwards)."""
    passthrough = str(scenario.settings.get("codec", "")) == "passthrough"
    return (
        scenario.measure_quality and (scenario.baseline == "restreamer" or passthrough)
        and source.startswith(("rtsp://", "rtsps://"))
    )  # fmt: skip


def reference_folder() -> tempfile.TemporaryDirectory[str]:
    """A scratch folder for the server's reference frames: in memory (/dev/shm) when the
    machine has it, so the ring costs no disk writes; removed after the run."""
    shm = "/dev/shm"
    where = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.TemporaryDirectory(prefix="streamlab-reference-", dir=where)


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

        await sample_seconds(scenario.warmup_s, tick, series, sample, measure.epoch_ms())
        start, frames_before, cpu_before = measure.epoch_ms(), frames[0], process.cpu_times()
        await sample_seconds(scenario.duration_s, tick, series, sample, start)
        seconds = (measure.epoch_ms() - start) / 1000
        cpu_after, frames_after = process.cpu_times(), frames[0]
        rss_mb = process.memory_info().rss / 2**20
    busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    result.series = rezero(series, start)
    result.metrics = {
        "fps": round((frames_after - frames_before) / seconds, 2),
        "cpu_percent": round(100 * busy / seconds, 1),
        "rss_mb": round(rss_mb, 1),
    }
