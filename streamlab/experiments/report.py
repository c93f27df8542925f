"""Reports people look at: Markdown + HTML with PNG plots, labelled by parameters.

Per group of scenarios: a key table, a per-stage latency table and the plots (from
``plots``); then the measurement-truth checks (calibration delta, agreement of ratios
between repeats).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamlab.experiments import results
from streamlab.experiments.labels import HIDDEN_PARAMS as HIDDEN_PARAMS
from streamlab.experiments.labels import labels, param_columns, show
from streamlab.experiments.plots import AXES as AXES
from streamlab.experiments.plots import FACETS as FACETS
from streamlab.experiments.plots import _facet as _facet
from streamlab.experiments.plots import (
    plot_bars,
    plot_cdf,
    plot_cpu_viewers,
    plot_rate_quality,
    plot_time,
)
from streamlab.experiments.plots import values_span as values_span
from streamlab.experiments.report_data import Loaded as Loaded
from streamlab.experiments.report_data import load

KEY_COLUMNS = (
    ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms"), ("latency_p99_ms", "p99 ms"),
    ("fps", "fps"), ("harmonic_fps", "harmonic fps"), ("freezes", "gaps >100 ms"),
    ("freeze_count", "freezes"), ("freeze_total_ms", "frozen ms"), ("pause_count", "pauses"),
    ("max_gap_ms", "max gap ms"), ("interval_p95_ms", "interval p95 ms"), ("kbps", "kbit/s"),
    ("psnr_y_mean_db", "PSNR-Y dB"), ("psnr_y_p5_db", "PSNR-Y p5 dB"),
    ("psnr_yuv_mean_db", "PSNR-YUV dB"), ("ssim_y_mean", "SSIM-Y"),
    ("vmaf_mean", "VMAF"), ("quality_sampled", "scored"), ("frames_dropped", "frames lost"),
    ("frames_repeated", "repeated"),
    ("cpu_percent", "CPU %"), ("rss_mb", "RSS MB"), ("analysis_lag_p95_ms", "lag p95 ms"),
    ("quality_changes", "rung changes"), ("time_to_settle_s", "settle s"),
    ("av_sync_ms", "A/V ms"),
)  # fmt: skip
FINE_COLUMNS = {"SSIM-Y": "{:.3f}", "scored": "{:.0%}"}  # shown with more than one decimal
CALIBRATION_MS = 100.0
CALIBRATION_TOLERANCE_MS = 5.0
AGREEMENT = 0.10


@dataclass
class Section:
    title: str
    text: str = ""
    table: Any = None
    images: list[Path] = field(default_factory=list)


def key_table(rows: Any) -> Any:
    import pandas as pd

    table = pd.DataFrame({"scenario": labels(rows)})
    for column, title in KEY_COLUMNS:
        if column in rows.columns and rows[column].notna().any():
            values = rows[column].to_numpy()
            if title in FINE_COLUMNS:
                shown = FINE_COLUMNS[title]
                values = np.array([_fine(shown, v) for v in values], dtype=object)
            table[title] = values
    counters = [c for c in rows.columns if c.startswith("dropped.")]
    drops = [c for c in counters if "drop" in c.split(".", 1)[1]]
    skips = [c for c in counters if c not in drops]
    if drops:  # frames lost on the way (buffer, encoder, viewer queue, link)
        table["dropped"] = rows[drops].fillna(0).sum(axis=1).to_numpy()
    if skips:  # frames not analysed, by choice or because analysis was busy
        table["not analysed"] = rows[skips].fillna(0).sum(axis=1).to_numpy()
    table["repeats"] = rows["repeats"].to_numpy()
    if rows["error"].astype(bool).any():
        table["error"] = rows["error"].to_numpy()
    return table


def _fine(pattern: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return pattern.format(float(value))


def stage_table(rows: Any, names: list[str]) -> Any:
    """Mean ms from capture to each stage, one column per stage (None without any)."""
    columns = [c for c in rows.columns if c.startswith("stage_ms.") and rows[c].notna().any()]
    if not columns:
        return None
    table = rows[columns].rename(columns=lambda c: c.split(".", 1)[1])
    table.insert(0, "scenario", names)
    return table


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_") or "group"


def calibration(frame: Any) -> Any:
    """Pairs that differ only in ``stage_delay_ms``: the measured p50 delta per pair."""
    import pandas as pd

    if "stage_delay_ms" not in frame:
        return pd.DataFrame()
    params = [c for c in param_columns(frame) if c != "stage_delay_ms"]
    rows = []
    delayed = frame[frame["stage_delay_ms"].fillna(0).astype(float) > 0]
    for _, row in delayed.iterrows():
        mask = frame["stage_delay_ms"].fillna(0).astype(float) == 0
        mask &= frame["run"] == row["run"]
        for column in params:
            mask &= frame[column].map(show) == show(row[column])
        base = frame[mask]
        if base.empty or row.get("latency_p50_ms") is None:
            continue
        delta = float(row["latency_p50_ms"]) - float(base.iloc[0]["latency_p50_ms"])
        target = float(row["stage_delay_ms"])
        rows.append({"run": row["run"], "scenario": row["name"], "stage_delay_ms": target,
                     "p50 without": base.iloc[0]["latency_p50_ms"],
                     "p50 with": row["latency_p50_ms"], "delta ms": round(delta, 1),
                     "within ±5 ms": abs(delta - target) <= CALIBRATION_TOLERANCE_MS})  # fmt: skip
    return pd.DataFrame(rows)


def agreement(paths: list[str | Path]) -> Any:
    """Ratios of each scenario's p50 to its group's first scenario, repeat against repeat."""
    import pandas as pd

    rows = []
    for path in paths:
        doc = results.read(path)
        groups: dict[str, list[dict[str, Any]]] = {}
        for bench in doc["benchmarks"]:
            groups.setdefault(bench.get("group", ""), []).append(bench)
        for group, benches in groups.items():
            reference = benches[0]
            ref = [r.get("latency_p50_ms") for r in reference["extra_info"].get("repeats", [])]
            for bench in benches[1:]:
                own = [r.get("latency_p50_ms") for r in bench["extra_info"].get("repeats", [])]
                ratios = [o / r for o, r in zip(own, ref, strict=False) if o and r]
                if len(ratios) < 2:
                    continue
                spread = (max(ratios) - min(ratios)) / min(ratios)
                shown = ", ".join(f"{x:.3f}" for x in ratios)
                rows.append({"group": group, "scenario": bench["name"], "vs": reference["name"],
                             "ratios": shown, "spread": f"{spread:.1%}",
                             "within 10%": spread <= AGREEMENT})  # fmt: skip
    return pd.DataFrame(rows)


def build(paths: list[str | Path], out: Path) -> list[Section]:
    loaded = load(*paths)
    frame = loaded.frame
    m = loaded.machine
    load_avg = m.get("load_avg_before")
    versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())
    sections = [Section("Machine", text=(
        f"{m.get('cpu_model') or m.get('processor')}, {m.get('cores')} cores, "
        f"Python {m.get('python_version')}, load average before the run {load_avg}; "
        f"versions: {versions}"))]  # fmt: skip
    group_column = frame["group"].fillna("").replace("", "scenarios") if "group" in frame else None
    frame = frame.assign(_group=group_column if group_column is not None else "scenarios")
    for group, rows in frame.groupby("_group", sort=False):
        rows = rows.reset_index(drop=True)
        names = labels(rows)
        slug = _slug(str(group))
        images = [p for p in (
            plot_cdf(loaded, rows, names, out / f"{slug}_latency_cdf.png"),
            plot_time(loaded, rows, names, out / f"{slug}_fps_kbps.png"),
            plot_bars(loaded, rows, names, out / f"{slug}_bars.png"),
            plot_cpu_viewers(rows, out / f"{slug}_cpu_viewers.png"),
            plot_rate_quality(rows, out / f"{slug}_rate_quality.png"),
        ) if p is not None]  # fmt: skip
        sections.append(Section(str(group), table=key_table(rows), images=images))
        stages = stage_table(rows, names)
        if stages is not None:
            sections.append(Section(f"{group}: per-stage latency", table=stages,
                                    text="Mean ms from capture to entering each stage "
                                         "(server side, from its /metrics)."))  # fmt: skip
    calibrated = calibration(frame)
    if not calibrated.empty:
        sections.append(Section("Calibration (stage_delay_ms)", table=calibrated,
                                text="A held stage must add its delay to p50, ±5 ms."))  # fmt: skip
    agreed = agreement(paths)
    if not agreed.empty:
        sections.append(Section("Repeat agreement (ratios within 10 %)", table=agreed,
                                text="Ratio of p50 latency to the group's first scenario, "
                                     "per repeat; spread = (max - min) / min."))  # fmt: skip
    return sections


def write(paths: list[str | Path], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` (+ PNGs) under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = build(paths, out)
    runs = ", ".join(Path(p).name for p in paths)
    md = [f"# streamlab experiments: {runs}\n"]
    body = [f"<h1>streamlab experiments: {html.escape(runs)}</h1>"]
    for section in sections:
        md.append(f"\n## {section.title}\n")
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            md.append(f"\n{section.text}\n")
            body.append(f"<p>{html.escape(section.text)}</p>")
        if section.table is not None and len(section.table):
            md.append("\n" + markdown_table(section.table) + "\n")
            body.append(section.table.to_html(index=False, na_rep="", float_format="%.1f"))
        for image in section.images:
            md.append(f"\n![{image.stem}]({image.name})\n")
            body.append(f'<p><img src="{html.escape(image.name)}" alt="{image.stem}"></p>')
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("".join(md))
    style = "body{font-family:system-ui;margin:2em}table{border-collapse:collapse}" \
            "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"  # fmt: skip
    html_path.write_text(f"<!doctype html><meta charset=utf-8><title>streamlab report</title>"
                         f"<style>{style}</style>{''.join(body)}")  # fmt: skip
    return md_path, html_path


def markdown_table(table: Any) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "**no**"
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.1f}"
        return "" if value is None else str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join([header, rule, *body])
