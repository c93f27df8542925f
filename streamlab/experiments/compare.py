"""Run against run: per scenario and metric, A, B, B/A and a verdict from the repeats.

The verdict follows asv and Pinpoint, not pytest-benchmark's bare threshold: a difference
counts only when it is both *significant across independent repeats* and *at least the
threshold* in size.

- enough repeats for the exact Mann-Whitney U test to reach ``alpha`` (4 per side) → the
  test decides;
- three repeats per side: the repeats must not overlap at all (min..max apart — U's most
  extreme outcome, p = 0.1). Non-overlapping IQRs were the first idea, but with 3 repeats
  they also happen by chance 34 % of the time (59 % with 2), simulated on equal samples;
- fewer: a difference beyond the threshold is ``inconclusive`` (never a regression).

Verdicts: ``better``, ``worse``, ``same`` (within noise or below the threshold),
``changed`` (a metric with no good direction, e.g. kbit/s), ``inconclusive``.

Picture quality is on a log scale already: PSNR (dB) and SSIM differences count from an
absolute step (``ABSOLUTE``: 0.5 dB, 0.005 SSIM, 2 VMAF points) instead of the relative
threshold, which would ask 4 dB of a 40 dB picture.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlab.errors import ConfigError
from streamlab.experiments import results, stats

# metric -> +1 higher is better, -1 lower is better, 0 neither
METRICS: dict[str, int] = {
    "latency_p50_ms": -1, "latency_p95_ms": -1, "latency_p99_ms": -1, "fps": 1,
    "freezes": -1, "max_gap_ms": -1, "interval_p95_ms": -1, "kbps": 0, "analysis_lag_p50_ms": -1,
    "analysis_lag_p95_ms": -1, "cpu_percent": -1, "rss_mb": -1, "quality_changes": 0,
    "time_to_settle_s": -1,
    "psnr_y_mean_db": 1, "psnr_y_p5_db": 1, "psnr_yuv_mean_db": 1, "ssim_y_mean": 1,
    "vmaf_mean": 1, "harmonic_fps": 1, "freeze_count": -1, "freeze_total_ms": -1,
    "pause_count": -1, "frames_dropped": -1, "frames_repeated": -1, "resolution_switches": 0,
    "quality_sampled": 0,
}  # fmt: skip
# metric -> the smallest difference that counts, in the metric's own unit
ABSOLUTE: dict[str, float] = {
    "psnr_y_mean_db": 0.5, "psnr_y_p5_db": 0.5, "psnr_yuv_mean_db": 0.5, "ssim_y_mean": 0.005,
    "vmaf_mean": 2.0,
}  # fmt: skip
ALPHA = 0.05


@dataclass(frozen=True)
class Row:
    scenario: str
    metric: str
    a: float | None
    b: float | None
    ratio: float | None
    verdict: str
    test: str


def parse_threshold(text: str | float) -> float:
    """``10%`` or ``0.1`` → 0.1; ConfigError for anything else."""
    try:
        value = float(str(text).strip().rstrip("%"))
    except ValueError:
        raise ConfigError(f"threshold must look like 10% or 0.1, got {text!r}") from None
    if str(text).strip().endswith("%") or value >= 1:
        value /= 100
    if not 0 < value < 10:
        raise ConfigError(f"threshold must be above 0, got {text!r}")
    return value


def _key(bench: dict[str, Any]) -> tuple[str, str]:
    params = dict(bench.get("params") or {})
    return bench["name"], json.dumps(params, sort_keys=True, default=str)


def verdict(a: list[float], b: list[float], direction: int, threshold: float) -> tuple[str, str]:
    """``(verdict, how)`` for per-repeat values ``a`` (before) and ``b`` (after)."""
    ma, mb = stats.quartiles(a)[1], stats.quartiles(b)[1]
    if ma == mb:
        return "same", "equal medians"
    effect = abs(mb - ma) / abs(ma) if ma else float("inf")
    if len(a) >= 2 and len(b) >= 2 and stats.smallest_p(len(a), len(b)) <= ALPHA:
        _, p = stats.mann_whitney_u(a, b)
        significant, how = p <= ALPHA, f"Mann-Whitney p={p:.3f}"
    elif len(a) >= 3 and len(b) >= 3:
        apart = not stats.ranges_overlap(a, b)
        significant, how = apart, "repeats apart" if apart else "repeats overlap"
    else:
        significant, how = False, f"n={len(a)}/{len(b)}"
        if effect >= threshold:
            return "inconclusive", how + " (repeat to decide)"
    how += f", effect {effect:.0%}" if effect != float("inf") else ", from 0"
    if not significant or effect < threshold:
        return "same", how
    if direction == 0:
        return "changed", how
    return ("better" if (mb > ma) == (direction > 0) else "worse"), how


def _values(bench: dict[str, Any], metric: str) -> list[float]:
    repeats = (bench.get("extra_info") or {}).get("repeats") or []
    values = [r.get(metric) for r in repeats]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers:
        return numbers
    single = (bench.get("extra_info") or {}).get(metric)
    return [float(single)] if isinstance(single, (int, float)) else []


def compare(a_path: str | Path, b_path: str | Path, *, threshold: float = 0.1) -> list[Row]:
    """Every matched scenario and metric; unmatched scenarios get one ``only in`` row."""
    a_doc, b_doc = results.read(a_path), results.read(b_path)
    a_index = {_key(x): x for x in a_doc["benchmarks"]}
    b_index = {_key(x): x for x in b_doc["benchmarks"]}
    rows: list[Row] = []
    for key, a_bench in a_index.items():
        b_bench = b_index.get(key)
        if b_bench is None:
            rows.append(Row(key[0], "-", None, None, None, "only in A", ""))
            continue
        for metric, direction in METRICS.items():
            a_values, b_values = _values(a_bench, metric), _values(b_bench, metric)
            if not a_values or not b_values:
                continue
            a_mid, b_mid = stats.quartiles(a_values)[1], stats.quartiles(b_values)[1]
            ratio = round(b_mid / a_mid, 3) if a_mid else None
            step = ABSOLUTE.get(metric)
            own = step / abs(a_mid) if step is not None and a_mid else threshold
            word, how = verdict(a_values, b_values, direction, own)
            digits = 4 if metric.startswith("ssim") else 2
            rows.append(Row(key[0], metric, round(a_mid, digits), round(b_mid, digits), ratio,
                            word, how))  # fmt: skip
    for key in b_index:
        if key not in a_index:
            rows.append(Row(key[0], "-", None, None, None, "only in B", ""))
    return rows


def regressions(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.verdict == "worse"]


def to_frame(rows: list[Row]) -> Any:
    import pandas as pd

    return pd.DataFrame([r.__dict__ for r in rows])


def to_text(rows: list[Row]) -> str:
    """A fixed-width table for terminals and CI logs."""
    header = ("scenario", "metric", "A", "B", "B/A", "verdict", "how")
    cells = [header] + [
        (r.scenario, r.metric, _cell(r.a), _cell(r.b), _cell(r.ratio), r.verdict, r.test)
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
