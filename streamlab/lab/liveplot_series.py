"""What a LivePlot can show: its metrics, their titles, and each metric's named series
(lists of ``(t, value)`` points) made from a snapshot of the plot's data."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

METRICS = ("fps", "latency", "stages", "lag", "kbps", "drops", "psnr", "ssim", "audio")
QUALITY_METRICS = ("psnr", "ssim")
TITLES = {
    "fps": "frames per second",
    "latency": "latency (ms)",
    "stages": "per-stage latency since capture (ms)",
    "lag": "analysis lag (ms)",
    "kbps": "kbit/s per viewer",
    "drops": "drops per second by reason",
    "psnr": "PSNR-Y per quality viewer (dB)",
    "ssim": "SSIM-Y per quality viewer",
    "audio": "camera audio level (dBov)",
}

Points = list[tuple[float, float]]
BIN_S = 0.5  # per-frame series are plotted as means over this
AUDIO_FLOOR_DB = -60.0  # the audio plot shows at least 0 … -60 dBov


def viewer_kbps(
    info: dict[str, Any] | None, t: float, last: dict[str, tuple[float, int]]
) -> dict[str, float]:
    """kbit/s per viewer: the server's ``viewers[].kbps`` when it reports them, otherwise
    the stream's delivered bytes as one series."""
    if info is None:
        return {}
    viewers = info.get("viewers")
    if isinstance(viewers, list):
        return {str(v.get("id", i))[:8]: float(v.get("kbps") or 0) for i, v in enumerate(viewers)}
    delivery = info.get("delivery") or {}
    total = delivery.get("bytes_sent")
    if total is None or not delivery.get("viewers"):
        return {}
    previous = last.get("all")
    last["all"] = (t, int(total))
    if previous is None or t <= previous[0]:
        return {}
    return {"all": (int(total) - previous[1]) * 8 / 1000 / (t - previous[0])}


def audio_level(info: dict[str, Any] | None) -> float | None:
    """The camera's audio level (dBov) the server measured, or None (no audio, not served,
    or nothing measured: ``StreamAudio`` explains when)."""
    audio = ((info or {}).get("delivery") or {}).get("audio") or {}
    level = audio.get("level_dbov")
    return None if level is None else float(level)


def binned(points: Points) -> Points:
    bins: dict[int, list[float]] = {}
    for t, value in points:
        bins.setdefault(int(t / BIN_S), []).append(value)
    return [((k + 0.5) * BIN_S, sum(v) / len(v)) for k, v in sorted(bins.items())]


def binned_stages(
    points: list[tuple[float, dict[str, float]]],
) -> list[tuple[float, dict[str, float]]]:
    names = {name for _, stages in points for name in stages}
    per_name = {n: binned([(t, st[n]) for t, st in points if n in st]) for n in names}
    rows: dict[float, dict[str, float]] = {}
    for name, points_ in per_name.items():
        for t, value in points_:
            rows.setdefault(t, {})[name] = value
    return sorted(rows.items())


def _fps_series(snap: dict[str, Any]) -> dict[str, Points]:
    fps_in = [(r["t"], r["fps_in"]) for r in snap["samples"] if "fps_in" in r]
    return {"out": snap["fps_out"], "in": fps_in}


def prefixed(snap: dict[str, Any], prefix: str, label: str = "") -> dict[str, Points]:
    """Series of the polled samples whose keys start with ``prefix`` (named by the rest)."""
    series: dict[str, Points] = {}
    for row in snap["samples"]:
        for key, value in row.items():
            if key.startswith(prefix):
                series.setdefault(label + key[len(prefix) :], []).append((row["t"], value))
    return series


def _latency_series(snap: dict[str, Any]) -> dict[str, Points]:
    return {"capture → out": snap["latency"], **prefixed(snap, "glass:", "glass-to-glass ")}


def _stage_series(snap: dict[str, Any]) -> dict[str, Points]:
    series: dict[str, Points] = {}
    for t, stages in snap["stages"]:
        for name, value in stages.items():
            series.setdefault(name, []).append((t, value))
    return series


def _drop_series(snap: dict[str, Any]) -> dict[str, Points]:
    series: dict[str, Points] = {}
    for t, reason, count in snap["drops"]:
        series.setdefault(reason, []).append((t, count))
    return series


SERIES: dict[str, Callable[[dict[str, Any]], dict[str, Points]]] = {
    "fps": _fps_series,
    "latency": _latency_series,
    "stages": _stage_series,
    "lag": lambda snap: {"analysis": snap["lag"]},
    "kbps": lambda snap: prefixed(snap, "kbps:"),
    "drops": _drop_series,
    "psnr": lambda snap: snap["psnr"],
    "ssim": lambda snap: snap["ssim"],
    "audio": lambda snap: prefixed(snap, "audio:"),
}


def y_limits(metric: str, series: dict[str, Points]) -> tuple[float, float | None]:
    """The y range of a metric's plot: from 0 up, but dBov from at least -60 up to 0."""
    if metric != "audio":
        return 0.0, None
    lowest = min((v for points in series.values() for _, v in points), default=0.0)
    return min(AUDIO_FLOOR_DB, math.floor(lowest / 10) * 10.0), 0.0
