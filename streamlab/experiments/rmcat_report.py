"""The RMCAT results as a markdown table (one row per case and server) and one PNG per case:
capacity against each flow's received rate, with streamlab's rung and estimate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlab.experiments.plots import _plt

HEADER = ("| case | server | time to 90 %: start / step up (s) | queue < 150 ms after a step "
          "down (s) | utilisation: link / media | p95 queue (ms): per flow / link | loss "
          "| rung changes /min | Jain | kbit/s per flow | fps per flow | freezes | verdict |")


def _fmt(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _list(values: list[Any]) -> str:
    return ", ".join(_fmt(v) for v in values) if values else "-"


def row(run: dict[str, Any]) -> str:
    """One table row for a run of a case against a server."""
    name = f"{run['case']} {run['title']}".strip()
    if run.get("error"):
        return f"| {name} | {run['server']} | error: {run['error']} |" + " |" * 11
    m = run["metrics"]
    flows = m["flows"]
    starts = [s["reach_s"] for f in flows for s in f["start"]]
    ups = [u["reach_s"] for f in flows for u in f["step_ups"]]
    downs = [d["queue_ok_s"] for f in flows for d in f["step_downs"]]
    jain = m.get("jain")
    if m.get("jain_with_tcp") is not None:
        jain_text = f"{_fmt(jain) if jain is not None else '-'} (with TCP {m['jain_with_tcp']:g})"
    else:
        jain_text = _fmt(jain) if jain is not None else "-"
    kbps = _list([f["kbps"] for f in flows])
    if m.get("tcp_kbps") is not None:
        kbps += f"; TCP {m['tcp_kbps']:g}"
    verdict = m["verdict"]
    verdict_text = "**met**" if verdict["met"] else "missed: " + "; ".join(verdict["misses"])
    cells = [name, run["server"], f"{_list(starts)} / {_list(ups)}", _list(downs),
             f"{_fmt(m.get('utilisation'))} / {_fmt(m.get('media_utilisation'))}",
             f"{_list([f['queue_p95_ms'] for f in flows])} / {_fmt(m.get('link_queue_p95_ms'))}",
             _fmt(m.get("loss")),
             _list([f["rung_changes_per_min"] for f in flows]), jain_text, kbps,
             _list([f["fps"] for f in flows]), _list([f["freezes"] for f in flows]),
             verdict_text]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def table(results: dict[str, Any]) -> str:
    """The markdown table of all runs."""
    lines = [HEADER, "|" + "---|" * 13]
    lines += [row(run) for run in results["runs"]]
    return "\n".join(lines)


def plot_case(runs: list[dict[str, Any]], path: Path) -> Path:
    """One panel per server: capacity, each flow's received rate, streamlab's target."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 3.6), squeeze=False,
                             sharey=True)  # fmt: skip
    for ax, run in zip(axes[0], runs, strict=True):
        m = run["metrics"]
        ax.set_title(f"RMCAT {run['case']} — {run['server']}", fontsize=9)
        if not m:
            ax.text(0.5, 0.5, run.get("error") or "no data", ha="center", transform=ax.transAxes)
            continue
        times = m["times"]
        ax.step(times, m["capacity_kbps"], where="post", color="black", lw=1.5, label="capacity")
        colors = plt.get_cmap("tab10")
        for i, flow in enumerate(m["flows"]):
            series = flow["series"]
            ax.plot(times, series["rate_kbps"], color=colors(i), lw=1, label=f"flow {i + 1}")
            for key, style, what in (("target_kbps", "--", "rung"),
                                     ("estimate_kbps", ":", "estimate")):  # fmt: skip
                values = series[key]
                if any(v is not None for v in values):
                    ax.plot(times, [float("nan") if v is None else v for v in values],
                            color=colors(i), lw=0.8, ls=style, label=f"flow {i + 1} {what}")
        tcp = m.get("tcp_series")
        if tcp:
            ax.plot(tcp["t"], tcp["rate_kbps"], color="grey", lw=1, label="TCP")
        ax.set_xlabel("s")
        ax.legend(fontsize=6, loc="upper right")
    axes[0][0].set_ylabel("kbit/s (received; rung dashed; estimate dotted)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(results: dict[str, Any], folder: Path) -> Path:
    """``rmcat.md`` (the table, the settings, the plots' names) and ``rmcat-<case>.png``."""
    by_case: dict[str, list[dict[str, Any]]] = {}
    for run in results["runs"]:
        by_case.setdefault(run["case"], []).append(run)
    plots = [plot_case(runs, folder / f"rmcat-{name}.png") for name, runs in by_case.items()]
    first = results["runs"][0] if results["runs"] else {}
    lines = ["# RMCAT test cases (RFC 8867; metrics RFC 8868)", "",
             f"Source {results['source']}, time scale {results['time_scale']:g}, queue "
             f"{_fmt(first.get('queue_ms'))} ms, camera {first.get('camera')}.", "",
             table(results), "",
             *[f"![{p.stem}]({p.name})" for p in plots], ""]  # fmt: skip
    path = folder / "rmcat.md"
    path.write_text("\n".join(lines))
    return path
