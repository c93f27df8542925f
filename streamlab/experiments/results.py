"""Runs → pytest-benchmark-compatible JSON (+ a side file of raw samples) → pandas.

One ``benchmarks[]`` entry per scenario: ``params`` are the scenario's parameters,
``extra_info`` the medians over repeats of every metric plus ``repeats`` (per-repeat
values, what ``compare`` tests) and ``stats`` pytest-benchmark's statistics of the
per-frame glass-to-glass latency in seconds (of the frame interval for baselines that
deliver nothing), so ``pytest-benchmark compare`` still reads the file.
The side file ``<stem>.samples.json`` keeps every frame's latency and the time series.
Saved pairs (``save_video``) move to ``<stem>.videos/<scenario>-<repeat>/``; ``extra_info``
names the first repeat's as ``video_dir`` (relative to the JSON's folder), each repeat its own.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from streamlab.errors import ConfigError
from streamlab.experiments.runner import RunResult

MARK = "streamlab.experiments/1"
UNSAFE = re.compile(r"[^A-Za-z0-9_.=,+-]+")
PACKAGES = ("streamlab", "aiortc", "av", "numpy", "opencv-python-headless", "pandas", "dask")


def machine_info(load_before: Iterable[float] | None = None) -> dict[str, Any]:
    """pytest-benchmark's machine_info keys plus CPU model, cores, load average, versions."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    uname = platform.uname()
    return {
        "node": uname.node, "processor": uname.processor or model, "machine": uname.machine,
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(), "release": uname.release,
        "system": uname.system, "cpu": {"brand_raw": model, "count": os.cpu_count()},
        "cpu_model": model, "cores": os.cpu_count(),
        "load_avg_before": [round(v, 2) for v in (load_before or os.getloadavg())],
        "versions": versions,
    }  # fmt: skip


def commit_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
        except OSError:
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return {"id": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "project": "streamlab"}  # fmt: skip


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def aggregate(runs: list[RunResult]) -> dict[str, Any]:
    """Median of every numeric metric over repeats; dicts (stages, drops) key by key."""
    done = [r for r in runs if not r.error]
    out: dict[str, Any] = {}
    keys = [k for r in done for k in r.metrics]
    for key in dict.fromkeys(keys):
        values = [r.metrics.get(key) for r in done]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers:
            digits = 4 if key.startswith("ssim") else 2  # SSIM differences live in the 3rd decimal
            out[key] = round(_median([float(v) for v in numbers]), digits)
        elif any(isinstance(v, dict) for v in values):
            sub = [v for v in values if isinstance(v, dict)]
            names = dict.fromkeys(k for d in sub for k in d)
            out[key] = {n: round(_median([float(d.get(n, 0)) for d in sub]), 2) for n in names}
        else:
            out[key] = None
    return out


def _stats(runs: list[RunResult]) -> dict[str, Any]:
    from pytest_benchmark.stats import Stats

    stats = Stats()
    for run in runs:
        values = [v / 1000 for v in run.latencies_ms]
        if not values:  # nothing delivered: the frame interval stands in
            fps = run.metrics.get("fps") or 0
            values = [1 / fps] if fps else []
        for value in values:
            stats.update(value)
    if not stats.data:
        stats.update(0.0)
    result: dict[str, Any] = stats.as_dict()
    result["iterations"] = 1
    return result


def build(
    runs: list[RunResult], *, source: str = "", samples: str = "", root: Path | None = None
) -> dict[str, Any]:
    """The result document for ``runs`` (several repeats of a scenario are folded); saved
    pairs are named relative to ``root`` (the JSON's folder) when they lie under it."""
    from streamlab.experiments.scenario import Scenario

    by_name: dict[str, list[RunResult]] = {}
    for run in runs:
        by_name.setdefault(run.name, []).append(run)
    benchmarks = []
    for name, group in by_name.items():
        scenario = Scenario.from_table(group[0].scenario)
        extra = aggregate(group)
        extra["repeats"] = [dict(r.metrics, repeat=r.repeat) for r in group if not r.error]
        videos = [_relative(r.video_dir, root) for r in group if not r.error]
        for entry, video in zip(extra["repeats"], videos, strict=True):
            if video:
                entry["video_dir"] = video
        if any(videos):
            extra["video_dir"] = next(v for v in videos if v)
        extra["errors"] = [r.error for r in group if r.error]
        extra["group"] = scenario.group
        benchmarks.append({
            "group": scenario.group or "scenarios",
            "name": name, "fullname": f"{source or 'scenarios'}::{name}",
            "params": scenario.params(), "param": name.partition("[")[2].rstrip("]") or None,
            "extra_info": extra,
            "options": {"repeat": len(group), "duration_s": scenario.duration_s,
                        "warmup_s": scenario.warmup_s, "timer": "wall clock (epoch ms)"},
            "stats": _stats([r for r in group if not r.error]),
        })  # fmt: skip
    loads = [r.load_before for r in runs]
    return {
        "machine_info": machine_info(loads[0] if loads else None),
        "commit_info": commit_info(),
        "benchmarks": benchmarks,
        "datetime": datetime.datetime.now(datetime.UTC).isoformat(),
        "version": _pytest_benchmark_version(),
        "streamlab": {"format": MARK, "scenarios": source, "samples": samples},
    }


def _relative(folder: str, root: Path | None) -> str:
    if not folder or root is None:
        return folder
    path, base = Path(folder).resolve(), root.resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else folder


def keep_videos(runs: list[RunResult], out: Path) -> None:
    """Move each run's saved pair to ``<out stem>.videos/<scenario>-<repeat>/`` beside
    ``out`` (a pair from an earlier write there is replaced); ``video_dir`` follows. A pair
    not on this machine (a remote Dask worker's) stays where it is."""
    videos = out.parent / f"{out.stem}.videos"
    for run in runs:
        here = Path(run.video_dir) if run.video_dir else None
        if here is None or not here.is_dir() or here.resolve().is_relative_to(videos.resolve()):
            continue
        target = videos / f"{UNSAFE.sub('_', run.name).strip('_')}-{run.repeat}"
        if target.exists():
            shutil.rmtree(target)
        videos.mkdir(parents=True, exist_ok=True)
        shutil.move(here, target)
        run.video_dir = str(target)


def _pytest_benchmark_version() -> str:
    try:
        return metadata.version("pytest-benchmark")
    except metadata.PackageNotFoundError:
        return "5"


def write(runs: list[RunResult], path: str | Path, *, source: str = "") -> Path:
    """Write ``path`` (the JSON) and ``<stem>.samples.json`` beside it; returns ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    keep_videos(runs, out)
    side = out.with_name(f"{out.stem}.samples.json")
    side.write_text(json.dumps({
        "format": MARK,
        "runs": [{"name": r.name, "repeat": r.repeat, "latencies_ms": r.latencies_ms,
                  "series": r.series} for r in runs],
    }))  # fmt: skip
    document = build(runs, source=source, samples=side.name, root=out.parent)
    out.write_text(json.dumps(document, indent=1))
    return out


def read(path: str | Path) -> dict[str, Any]:
    """A result document; ConfigError (one line) when missing or not ours."""
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"results not found: {file}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file} is not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise ConfigError(f"{file} is not pytest-benchmark JSON (no 'benchmarks' key)")
    return data


def is_experiment(data: dict[str, Any]) -> bool:
    return (data.get("streamlab") or {}).get("format") == MARK


def samples(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``name -> [per repeat {latencies_ms, series}]`` from a result's side file (or {})."""
    file = Path(path)
    data = read(file)
    side = file.with_name((data.get("streamlab") or {}).get("samples") or "")
    if not side.is_file() or side == file:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for run in json.loads(side.read_text()).get("runs", []):
        out.setdefault(run["name"], []).append(run)
    return out


def frame(*paths: str | Path) -> Any:
    """One row per scenario (per file): run, name, every param and every metric."""
    import pandas as pd

    rows = []
    for path in paths:
        data = read(path)
        for bench in data["benchmarks"]:
            extra = dict(bench.get("extra_info") or {})
            repeats = extra.pop("repeats", [])
            errors = extra.pop("errors", [])
            row: dict[str, Any] = {"run": Path(path).stem, "name": bench["name"]}
            row.update(bench.get("params") or {})
            for key, value in extra.items():
                if isinstance(value, dict):
                    row.update({f"{key}.{k}": v for k, v in value.items()})
                else:
                    row[key] = value
            row["repeats"] = len(repeats)
            row["error"] = "; ".join(errors)
            rows.append(row)
    return pd.DataFrame(rows)


def results_frame(runs: list[RunResult]) -> Any:
    """One row per repeat, straight from runs (what sweeps return)."""
    import pandas as pd

    from streamlab.experiments.scenario import Scenario

    rows = []
    for run in runs:
        row: dict[str, Any] = {"name": run.name, "repeat": run.repeat}
        row.update(Scenario.from_table(run.scenario).params())
        for key, value in run.metrics.items():
            if isinstance(value, dict):
                row.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                row[key] = value
        row["error"] = run.error
        rows.append(row)
    return pd.DataFrame(rows)
