"""Report plots as PNGs: latency CDFs, fps / kbit/s / PSNR-Y over time, bars with IQR
error bars, CPU against viewers, rate-quality small multiples (kbit/s against PSNR-Y)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streamlab.experiments.labels import labels, show
from streamlab.experiments.report_data import Loaded, latencies_of, series_of
from streamlab.experiments.stats import quartiles

FACETS = ("network", "viewers")  # what a rate-quality plot's panels differ in
AXES = {"latency_p50_ms": "p50 latency (ms), IQR of frames",
        "cpu_percent": "server CPU (% of a core), IQR of seconds",
        "analysis_lag_p95_ms": "analysis lag p95 (ms), IQR of seconds"}  # fmt: skip


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
        values = np.sort(np.asarray(latencies_of(loaded, row), dtype=float))
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
    medians = [np.median(v) for _, row in rows.iterrows() if (v := latencies_of(loaded, row))]
    return float(max(medians) / max(min(medians), 1.0)) if medians else 1.0


def plot_time(loaded: Loaded, rows: Any, names: list[str], path: Path) -> Path | None:
    """fps and kbit/s at the viewer over time, and PSNR-Y beside them when measured."""
    plt = _plt()
    wide = len(rows) > 6
    with_psnr = any(_mean(s.get("psnr_y")) is not None
                    for _, row in rows.iterrows() for s in series_of(loaded, row))  # fmt: skip
    panels = 3 if with_psnr else 2
    fig, axes = plt.subplots(panels, 1, figsize=(12 if wide else 8, 2.75 * panels), sharex=True)
    colors = _colors(len(rows))
    drawn = False
    keys = ("rx_fps", "rx_kbps", "psnr_y")[:panels]
    for index, (label, (_, row)) in enumerate(zip(names, rows.iterrows(), strict=True)):
        series = series_of(loaded, row)
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
        if column in rows and rows[column].map(show).nunique() > 1:
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
    panels = list(measured.groupby(measured[facet].map(show), sort=False)) if facet else [
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
    codecs = "codec" in part and part["codec"].map(show).nunique() > 1
    groups = list(part.groupby(part["codec"].map(show), sort=False)) if codecs else [("", part)]
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
        values = latencies_of(loaded, row)
    else:
        key = "analysis_lag_ms" if metric.startswith("analysis") else metric
        seconds = [s.get(key) for s in series_of(loaded, row) if s.get("t", -1) >= 0]
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
