"""Figures of a measured window: latency, fps, gaps, kbit/s, CPU, RSS, time to settle,
quality and smoothness, dropped-frame counters and rung changes."""

from __future__ import annotations

import itertools
from typing import Any

from streamlab.experiments import measure


def offered(reference: str | None) -> list[int] | None:
    """The seqs the server's encoders were given (None without a reference)."""
    if not reference:
        return None
    from streamlab.quality.reference import ReferenceReader

    with ReferenceReader(reference) as reader:
        return [int(s) for s in reader.offered()]


def seen(logs: list[measure.ViewerLog], offered: list[int] | None) -> dict[str, Any]:
    """What the viewers saw in the window: PSNR / SSIM when scored, smoothness always (from
    arrivals alone when a viewer logs no seqs, e.g. Chromium)."""
    from streamlab.quality.smoothness import Shown
    from streamlab.quality.summary import quality_figures, smoothness_figures

    shown = [log.shown or [Shown(a, None, 0, 0) for a in log.arrivals] for log in logs]
    coded = sum(1 for frames in shown for f in frames if f.seq is not None)
    out = smoothness_figures(shown, offered)
    out.update(quality_figures([q for log in logs for q in log.quality], coded))
    return out


def summary(
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


def dropped(before: Any, after: Any) -> dict[str, float]:
    def first(api: Any) -> dict[str, Any]:
        return (api or {}).get("streams", [{}])[0] if api else {}

    start, end = measure.counters(first(before)), measure.counters(first(after))
    return {k: round(v - start.get(k, 0), 1) for k, v in end.items() if v - start.get(k, 0)}


def quality_changes(first: Any, last: Any, series: list[dict[str, Any]]) -> int:
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
