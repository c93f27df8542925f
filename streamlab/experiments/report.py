"""Reports people look at: Markdown + HTML with PNG plots, labelled by parameters.

Per group of scenarios: a key table, latency CDFs (p50/p95 marked), fps, kbit/s and PSNR
over time, bars with IQR error bars, CPU against viewers, rate-quality curves (kbit/s
against PSNR-Y, one panel per link or codec); then the measurement-truth checks
(calibration delta, agreement of ratios between repeats).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamlab.experiments import results
from streamlab.experiments.stats import quartiles

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
)  # fmt: skip
HIDDEN_PARAMS = {"duration_s", "source"}
FINE_COLUMNS = {"SSIM-Y": "{:.3f}", "scored": "{:.0%}"}  # shown with more than one decimal
FACETS = ("network", "viewers")  # what a rate-quality plot's panels differ in
CALIBRATION_MS = 100.0
CALIBRATION_TOLERANCE_MS = 5.0
AGREEMENT = 0.10
AXES = {"latency_p50_ms": "p50 latency (ms), IQR of frames",
        "cpu_percent": "server CPU (% of a core), IQR of seconds",
        "analysis_lag_p95_ms": "analysis lag p95 (ms), IQR of seconds"}  # fmt: skip


@dataclass
class Section:
    title: str
    text: str = ""
    table: Any = None
    images: list[Path] = field(default_factory=list)


@dataclass
class Loaded:
    """Result files as one table plus their raw samples keyed by (run, name)."""

    frame: Any
    samples: dict[tuple[str, str], list[dict[str, Any]]]
    machine: dict[str, Any]


def load(*paths: str | Path) -> Loaded:
    frame = results.frame(*paths)
    raw: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in paths:
        for name, runs in results.samples(path).items():
            raw[(Path(path).stem, name)] = runs
    machine = results.read(paths[0]).get("machine_info", {})
    return Loaded(frame, raw, machine)


def labels(rows: Any) -> list[str]:
    """Each row's label: the parameters that differ within ``rows`` (never a test id)."""
    params = [c for c in _param_columns(rows) if rows[c].map(_show).nunique() > 1]
    multi_run = rows["run"].nunique() > 1
    out = []
    for _, row in rows.iterrows():
        parts = [f"{c}={_show(row[c])}" for c in params]
        if not parts:
            parts = [f"system={row.get('system', '?')}"]
        if multi_run:
            parts.insert(0, str(row["run"]))
        out.append(", ".join(parts))
    return out


def _param_columns(rows: Any) -> list[str]:
    known = {"system", "viewers", "viewer", "cpu_load", "network", "codec", "quality",
             "buffering", "skipping", "analyze", "stage_delay_ms", "measure_quality"}  # fmt: skip
    from streamlab.config import StreamingConfig

    known |= set(StreamingConfig.model_fields)
    return [c for c in rows.columns if c in known and c not in HIDDEN_PARAMS]


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "default"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "none" if value == "" else str(value)


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


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_") or "group"


def _latencies(loaded: Loaded, row: Any) -> list[float]:
    runs = loaded.samples.get((row["run"], row["name"]), [])
    return [v for run in runs for v in run.get("latencies_ms", [])]


def _series(loaded: Loaded, row: Any) -> list[dict[str, Any]]:
    runs = loaded.samples.get((row["run"], row["name"]), [])
    return runs[0].get("series", []) if runs else []


def _colors(count: int) -> list[Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(count)]


def _legend(fig: Any, ax: Any, count: int) -> None:
    """Below the axes when many lines would hide the data."""
    if count <= 6:
        ax.legend(fontsize=7)
    else:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_cdf(loaded: Loaded, rows: Any, names: list[str], path: Path) -> Path | None:
    plt = _plt()
    wide = len(rows) > 6
    fig, ax = plt.subplots(figsize=(12 if wide else 8, 4.5))
    colors = _colors(len(rows))
    drawn = False
    for index, (label, (_, row)) in enumerate(zip(names, rows.iterrows(), strict=True)):
        values = np.sort(np.asarray(_latencies(loaded, row), dtype=float))
        if not len(values):
            continue
        drawn = True
        cdf = np.arange(1, len(values) + 1) / len(values)
        (line,) = ax.plot(values, cdf, label=label, color=colors[index])
        for q, marker in ((0.5, "o"), (0.95, "^")):
            x = float(np.quantile(values, q))
            ax.plot([x], [q], marker=marker, color=line.get_color())
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("glass-to-glass latency (ms)   ● p50  ▲ p95")
    ax.set_ylabel("fraction of frames")
    if values_span(loaded, rows) > 20:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    _legend(fig, ax, len(rows))
    return _save(plt, fig, path)


def values_span(loaded: Loaded, rows: Any) -> float:
    """Largest over smallest median latency in the group (log axis beyond 20x)."""
    medians = [np.median(v) for _, row in rows.iterrows() if (v := _latencies(loaded, row))]
    return float(max(medians) / max(min(medians), 1.0)) if medians else 1.0


def plot_time(loaded: Loaded, rows: Any, names: list[str], path: Path) -> Path | None:
    """fps and kbit/s at the viewer over time, and PSNR-Y beside them when measured."""
    plt = _plt()
    wide = len(rows) > 6
    with_psnr = any(_mean(s.get("psnr_y")) is not None
                    for _, row in rows.iterrows() for s in _series(loaded, row))  # fmt: skip
    panels = 3 if with_psnr else 2
    fig, axes = plt.subplots(panels, 1, figsize=(12 if wide else 8, 2.75 * panels), sharex=True)
    colors = _colors(len(rows))
    drawn = False
    keys = ("rx_fps", "rx_kbps", "psnr_y")[:panels]
    for index, (label, (_, row)) in enumerate(zip(names, rows.iterrows(), strict=True)):
        series = _series(loaded, row)
        t = [s["t"] for s in series]
        fps = [_mean(s.get("rx_fps")) for s in series]
        if not any(v is not None for v in fps):
            continue
        drawn = True
        for ax, key in zip(axes, keys, strict=True):
            values = [_mean(s.get(key)) for s in series]
            ax.plot(t, [np.nan if v is None else v for v in values],
                    label=label if key == "rx_fps" else None, color=colors[index])  # fmt: skip
    if not drawn:
        plt.close(fig)
        return None
    titles = ("fps at the viewer", "kbit/s at the viewer", "PSNR-Y at the viewer (dB)")
    for ax, title in zip(axes, titles, strict=False):
        ax.set_ylabel(title)
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds (0 = end of warm-up)")
    _legend(fig, axes[0], len(rows))
    return _save(plt, fig, path)


def _facet(rows: Any) -> str | None:
    """The parameter the rate-quality panels differ in: the first of ``FACETS`` that varies."""
    for column in FACETS:
        if column in rows and rows[column].map(_show).nunique() > 1:
            return column
    return None


def plot_rate_quality(rows: Any, path: Path) -> Path | None:
    """kbit/s against mean PSNR-Y, one panel per link (or viewer count): a line per codec
    through its scenarios (a rate-quality curve over rungs), else one labelled point per
    scenario."""
    if "psnr_y_mean_db" not in rows or "kbps" not in rows:
        return None
    measured = rows[rows["psnr_y_mean_db"].notna() & rows["kbps"].notna()]
    if measured.empty:
        return None
    plt = _plt()
    facet = _facet(measured)
    panels = list(measured.groupby(measured[facet].map(_show), sort=False)) if facet else [
        ("", measured)
    ]  # fmt: skip
    columns = min(len(panels), 3)
    lines = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(4.6 * columns, 3.6 * lines), squeeze=False,
                             sharey=True)  # fmt: skip
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    for ax, (value, part) in zip(axes.ravel(), panels, strict=False):
        _rate_quality_panel(ax, part.reset_index(drop=True), facet)
        ax.set_title(f"{facet}={value}" if facet else "all scenarios", fontsize=9)
        ax.set_xlabel("kbit/s at the viewer")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("PSNR-Y (dB), mean")
    return _save(plt, fig, path)


def _rate_quality_panel(ax: Any, part: Any, facet: str | None) -> None:
    codecs = "codec" in part and part["codec"].map(_show).nunique() > 1
    groups = list(part.groupby(part["codec"].map(_show), sort=False)) if codecs else [("", part)]
    point_labels = labels(part.drop(columns=[c for c in (facet, "codec" if codecs else None) if c],
                                    errors="ignore"))  # fmt: skip
    text = dict(zip(part.index, point_labels, strict=True))
    colors = _colors(len(groups) if codecs else len(part))
    written: set[str] = set()
    for index, (name, group) in enumerate(groups):
        group = group.sort_values("kbps")
        if codecs:
            ax.plot(group["kbps"], group["psnr_y_mean_db"], marker="o", color=colors[index],
                    label=f"codec={name}")  # fmt: skip
        for row_index, row in group.iterrows():
            if not codecs:
                ax.plot([row["kbps"]], [row["psnr_y_mean_db"]], marker="o",
                        color=colors[list(part.index).index(row_index)])  # fmt: skip
            if text[row_index] in written:
                continue  # the same rung of another codec: one label is enough
            written.add(text[row_index])
            ax.annotate(text[row_index], (row["kbps"], row["psnr_y_mean_db"]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
    if codecs:
        ax.legend(fontsize=7)


def _mean(values: Any) -> float | None:
    numbers = [v for v in values or [] if isinstance(v, (int, float))]
    return float(np.mean(numbers)) if numbers else None


def _spread(loaded: Loaded, row: Any, metric: str) -> tuple[float, float] | None:
    """IQR of what a bar summarises: per-frame latencies, per-second CPU, else repeats."""
    if metric.startswith("latency"):
        values = _latencies(loaded, row)
    else:
        key = "analysis_lag_ms" if metric.startswith("analysis") else metric
        seconds = [s.get(key) for s in _series(loaded, row) if s.get("t", -1) >= 0]
        values = [float(v) for v in seconds if isinstance(v, (int, float))]
    if len(values) < 2:
        return None
    q1, _, q3 = quartiles([float(v) for v in values])
    return q1, q3


def plot_bars(loaded: Loaded, rows: Any, names: list[str], path: Path) -> Path | None:
    plt = _plt()
    metrics = [m for m in AXES if m in rows and rows[m].notna().any()]
    if not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 0.45 * len(rows) + 1.5),
                             squeeze=False)  # fmt: skip
    for ax, metric in zip(axes[0], metrics, strict=True):
        values = rows[metric].astype(float).to_numpy()
        low, high = [], []
        for value, (_, row) in zip(values, rows.iterrows(), strict=True):
            spread = _spread(loaded, row, metric)
            if spread is None or np.isnan(value):
                low.append(0.0)
                high.append(0.0)
            else:
                low.append(max(0.0, value - spread[0]))
                high.append(max(0.0, spread[1] - value))
        y = np.arange(len(values))
        ax.barh(y, np.nan_to_num(values), xerr=[low, high], capsize=3, color="#4c78a8")
        ax.set_yticks(y, names if ax is axes[0][0] else [""] * len(names), fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(AXES[metric])
        ax.grid(axis="x", alpha=0.3)
    return _save(plt, fig, path)


def plot_cpu_viewers(rows: Any, path: Path) -> Path | None:
    if "viewers" not in rows or rows["viewers"].nunique() < 2 or "cpu_percent" not in rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for system, part in rows.groupby("system"):
        part = part.sort_values("viewers")
        ax.plot(part["viewers"], part["cpu_percent"], marker="o", label=f"system={system}")
    ax.set_xlabel("viewers")
    ax.set_ylabel("server CPU (% of one core)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def calibration(frame: Any) -> Any:
    """Pairs that differ only in ``stage_delay_ms``: the measured p50 delta per pair."""
    import pandas as pd

    if "stage_delay_ms" not in frame:
        return pd.DataFrame()
    params = [c for c in _param_columns(frame) if c != "stage_delay_ms"]
    rows = []
    delayed = frame[frame["stage_delay_ms"].fillna(0).astype(float) > 0]
    for _, row in delayed.iterrows():
        mask = frame["stage_delay_ms"].fillna(0).astype(float) == 0
        mask &= frame["run"] == row["run"]
        for column in params:
            mask &= frame[column].map(_show) == _show(row[column])
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
