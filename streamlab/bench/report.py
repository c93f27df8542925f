"""Turn pytest-benchmark JSON into a pandas DataFrame, summaries and plots.

Every benchmark row keeps its ``extra_info`` as columns, so strategies, codecs and sizes
compare side by side: ``load_results(path).pivot_table(index="strategy", ...)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from streamlab.errors import ConfigError

STAT_COLUMNS = ("min", "max", "mean", "stddev", "median", "iqr", "ops", "rounds")


def load_results(*paths: str | Path) -> pd.DataFrame:
    """One row per benchmark (per file): name, group, timing stats in ms, and extra_info.

    Several files (run against run) get a ``run`` column holding each file's name.
    """
    frames = [_load_one(Path(p)) for p in paths]
    if not frames:
        raise ConfigError("no benchmark JSON given")
    return pd.concat(frames, ignore_index=True)


def _load_one(path: Path) -> pd.DataFrame:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"benchmark results not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not pytest-benchmark JSON ({exc.msg})") from None
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise ConfigError(f"{path} is not pytest-benchmark JSON (no 'benchmarks' key)")
    rows: list[dict[str, Any]] = []
    for bench in data["benchmarks"]:
        stats = bench.get("stats", {})
        row: dict[str, Any] = {
            "run": path.stem,
            "name": bench.get("name", ""),
            "test": bench.get("name", "").split("[", 1)[0],
            "group": bench.get("group") or "",
            "param": bench.get("param") or "",
        }
        for key in STAT_COLUMNS:
            value = stats.get(key)
            if value is not None and key not in ("ops", "rounds"):
                value = value * 1000.0  # seconds → ms
            row[f"{key}_ms" if key not in ("ops", "rounds") else key] = value
        row.update(bench.get("extra_info") or {})
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    csv: Path
    markdown: Path
    plots: list[Path]


def write_report(frame: pd.DataFrame, out_dir: str | Path) -> ReportFiles:
    """Write ``summary.csv``, ``summary.md`` and one bar plot per benchmark group."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "summary.csv"
    md_path = out / "summary.md"
    frame.to_csv(csv_path, index=False)
    md_path.write_text(to_markdown(frame))
    return ReportFiles(csv_path, md_path, plot_groups(frame, out))


def to_markdown(frame: pd.DataFrame) -> str:
    """A Markdown table per group: median/mean time plus every extra_info column."""
    parts = ["# Benchmark summary\n"]
    base = {"run", "name", "test", "group", "param", "ops", "rounds"}
    base |= {f"{k}_ms" for k in STAT_COLUMNS}
    for group, rows in frame.groupby("group", sort=True, dropna=False):
        extra = [c for c in rows.columns if c not in base and rows[c].notna().any()]
        columns = ["name", "median_ms", "mean_ms", "stddev_ms", "rounds", *extra]
        if rows["run"].nunique() > 1:
            columns.insert(0, "run")
        table = rows[[c for c in columns if c in rows.columns]]
        parts.append(f"\n## {group or 'ungrouped'}\n\n{_markdown_table(table)}\n")
    return "".join(parts)


def _markdown_table(table: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
        return "" if value is None else str(value)

    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join([header, rule, *body])


MEASURES = (
    ("p50_ms", "p50 latency (ms)"),
    ("cpu_percent", "CPU (% of one core)"),
    ("ratio", "streamlab / ffmpeg throughput"),
    ("fps", "frames per second"),
)


def _measure(rows: pd.DataFrame) -> tuple[str, str]:
    """What a group's plot shows: a measured figure from extra_info when the benchmark
    recorded one (its timing is then just the run's length), else the median time."""
    for column, axis in MEASURES:
        if column in rows.columns and rows[column].notna().all():
            return column, axis
    return "median_ms", "median time per round (ms)"


def plot_groups(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One horizontal bar chart of median time (ms) per group; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    for group, rows in frame.groupby("group", sort=True, dropna=False):
        label = rows["name"] if rows["run"].nunique() == 1 else rows["run"] + " " + rows["name"]
        column, axis = _measure(rows)
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.2))
        ax.barh(label, rows[column])
        ax.set_xlabel(axis)
        ax.set_title(str(group or "ungrouped"))
        fig.tight_layout()
        slug = "".join(ch if ch.isalnum() else "_" for ch in str(group or "ungrouped"))
        path = out_dir / f"{slug}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
