"""Live matplotlib plots of a running stream, refreshed about twice a second.

The plot subscribes to the pipeline's events (frames delivered and dropped, quality
changes) and, for a served stream, polls the server's per-viewer figures. Figures are
rendered to PNG with the Agg backend in an executor thread (no ipympl needed) and shown in
an ``ipywidgets.Image``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
import time
from collections import Counter, deque
from typing import Any

from streamlab.events import Event, FrameDelivered, FrameDropped, QualityChanged, SettingsChanged
from streamlab.lab.target import Target, resolve

METRICS = ("fps", "latency", "stages", "lag", "kbps", "drops")
TITLES = {
    "fps": "frames per second",
    "latency": "latency (ms)",
    "stages": "per-stage latency since capture (ms)",
    "lag": "analysis lag (ms)",
    "kbps": "kbit/s per viewer",
    "drops": "drops per second by reason",
}


class LivePlot:
    """Plots ``metrics`` of ``target`` over the last ``window_s`` seconds at ``hz``.

    ``metrics``: any of fps (in/out), latency (pipeline, and glass-to-glass from
    ``players``' frame codes), stages (per-stage latency), lag (analysis lag), kbps (per
    viewer, served streams), drops (by reason). Quality rung changes are vertical markers
    on every plot. ``plot.data()`` returns what is plotted as a pandas DataFrame.
    """

    def __init__(
        self,
        target: Any,
        metrics: tuple[str, ...] = ("fps", "latency", "lag", "kbps", "drops"),
        window_s: float = 60,
        *,
        hz: float = 2.0,
        players: tuple[Any, ...] = (),
        width_in: float = 9.0,
    ) -> None:
        import ipywidgets as widgets

        unknown = sorted(set(metrics) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
        if not 0.1 <= hz <= 10:
            raise ValueError(f"hz must be between 0.1 and 10, got {hz}")
        self.target: Target = resolve(target)
        self.metrics = tuple(metrics)
        self.window_s = window_s
        self.hz = hz
        self.players = tuple(players)
        self.width_in = width_in
        self.image = widgets.Image(format="png")
        self.state_view = widgets.HTML()
        self.widget = widgets.VBox([self.state_view, self.image])
        self.widget.add_class("sl-live-plot")
        self.renders = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._delivered: Counter[int] = Counter()  # second -> frames out
        self._latency: deque[tuple[float, float]] = deque(maxlen=4000)  # (t, ms)
        self._stages: deque[tuple[float, dict[str, float]]] = deque(maxlen=4000)
        self._lag: deque[tuple[float, float]] = deque(maxlen=4000)
        self._drops: Counter[tuple[int, str]] = Counter()  # (second, reason) -> count
        self._markers: deque[tuple[float, str]] = deque(maxlen=200)
        self._samples: deque[dict[str, Any]] = deque(maxlen=2000)  # polled: fps in, viewers
        self._last_in: tuple[float, int] | None = None
        self._last_bytes: dict[str, tuple[float, int]] = {}
        self._unsubscribe = self.target.pipeline.bus.subscribe(self._on_event)
        self._task: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop()
            self.start()

    # -- events (any thread) -----------------------------------------------------------

    def _t(self, at: float | None = None) -> float:
        return (time.monotonic() if at is None else at) - self.started

    def _on_event(self, event: Event) -> None:
        t = self._t()
        with self._lock:
            if isinstance(event, FrameDelivered):
                self._delivered[int(t)] += 1
                self._latency.append((t, event.latency_s * 1000))
                if event.stages:
                    self._stages.append((t, {k: v * 1000 for k, v in event.stages.items()}))
                if event.analysis_lag_s is not None:
                    self._lag.append((t, event.analysis_lag_s * 1000))
            elif isinstance(event, FrameDropped):
                self._drops[(int(t), f"{event.where}:{event.reason}")] += 1
            elif isinstance(event, QualityChanged):
                viewer = getattr(event, "viewer", None)
                label = f"{event.new}" + (f" ({viewer})" if viewer else "")
                self._markers.append((t, label))
            elif isinstance(event, SettingsChanged):
                self._markers.append((t, ", ".join(f"{k}={v}" for k, v in event.changes.items())))

    # -- polling (event loop) ----------------------------------------------------------

    def sample(self) -> dict[str, Any]:
        """Take one sample of the polled figures (fps in, per-viewer kbit/s, glass-to-glass)."""
        t = self._t()
        stats = self.target.pipeline.stats()
        row: dict[str, Any] = {"t": t}
        frames_in = int(stats.get("frames_in", 0))
        if self._last_in is not None and t > self._last_in[0]:
            row["fps_in"] = (frames_in - self._last_in[1]) / (t - self._last_in[0])
        self._last_in = (t, frames_in)
        info = self.target.stream_info()
        for viewer_id, kbps in _viewer_kbps(info, t, self._last_bytes).items():
            row[f"kbps:{viewer_id}"] = kbps
        for index, player in enumerate(self.players):
            latency = (getattr(player, "stats", None) or {}).get("latencyP50")
            if latency is not None:
                row[f"glass:{index}"] = float(latency)
        with self._lock:
            self._samples.append(row)
        return row

    def start(self) -> None:
        """Start refreshing at ``hz`` (needs a running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="lab-liveplot")

    async def stop(self) -> None:
        """Stop refreshing and listening (the last image stays)."""
        self._unsubscribe()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            running = self.target.running
            self._show_state(running)
            if running:
                self.sample()
            snapshot = self.snapshot()
            png = await loop.run_in_executor(None, self._render, snapshot)
            self.image.value = png
            self.renders += 1
            await asyncio.sleep(max(0.05, 1 / self.hz - (loop.time() - started)))

    def _show_state(self, running: bool) -> None:
        text = "running" if running else "stopped"
        color = "#080" if running else "#b00"
        self.state_view.value = (
            f"<b>{self.target.label}</b> <span style='color:{color}'>{text}</span>"
        )

    # -- data --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A copy of everything within the window (what the next render draws)."""
        t_now = self._t()
        low = t_now - self.window_s
        with self._lock:
            return {
                "now": t_now,
                "low": low,
                "fps_out": sorted(
                    (s + 0.5, n) for s, n in self._delivered.items() if low <= s < int(t_now)
                ),
                "latency": [p for p in self._latency if p[0] >= low],
                "stages": [p for p in self._stages if p[0] >= low],
                "lag": [p for p in self._lag if p[0] >= low],
                "drops": sorted((s + 0.5, r, n) for (s, r), n in self._drops.items() if s >= low),
                "markers": [m for m in self._markers if m[0] >= low],
                "samples": [r for r in self._samples if r["t"] >= low],
            }

    def data(self) -> Any:
        """Everything plotted so far (within the window) as a long pandas DataFrame:
        columns t (s since the plot started), metric, series, value."""
        import pandas as pd

        snap = self.snapshot()
        rows = [(t, "fps", "out", n) for t, n in snap["fps_out"]]
        rows += [(t, "latency", "pipeline", v) for t, v in snap["latency"]]
        rows += [(t, "lag", "analysis", v) for t, v in snap["lag"]]
        rows += [(t, "drops", r, n) for t, r, n in snap["drops"]]
        rows += [(t, "marker", label, 1) for t, label in snap["markers"]]
        for t, stages in snap["stages"]:
            rows += [(t, "stages", k, v) for k, v in stages.items()]
        for row in snap["samples"]:
            for key, value in row.items():
                if key == "fps_in":
                    rows.append((row["t"], "fps", "in", value))
                elif key.startswith("kbps:"):
                    rows.append((row["t"], "kbps", key[5:], value))
                elif key.startswith("glass:"):
                    rows.append((row["t"], "latency", f"glass-to-glass {key[6:]}", value))
        return pd.DataFrame(rows, columns=["t", "metric", "series", "value"])

    # -- drawing (executor thread) -----------------------------------------------------

    def render(self) -> bytes:
        """Draw the current window to PNG bytes (what the widget shows)."""
        return self._render(self.snapshot())

    def _render(self, snap: dict[str, Any]) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        count = len(self.metrics)
        cols = 2 if count > 2 else count
        rows = (count + cols - 1) // cols
        figure = Figure(figsize=(self.width_in, 2.0 * rows), dpi=72, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, cols, squeeze=False).ravel()
        for ax in axes[count:]:
            ax.set_visible(False)
        for ax, metric in zip(axes, self.metrics, strict=False):
            _DRAW[metric](ax, snap)
            ax.set_title(TITLES[metric], fontsize=9)
            ax.set_xlim(max(0.0, snap["low"]), max(snap["now"], 1.0))
            ax.tick_params(labelsize=7)
            for t, label in snap["markers"]:
                ax.axvline(t, color="#c0c", lw=0.8, ls="--")
                if metric == self.metrics[0]:
                    ax.annotate(label, (t, 1), xycoords=("data", "axes fraction"), fontsize=6,
                                rotation=90, va="top", ha="right", color="#a0a")  # fmt: skip
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6, loc="upper left")
        axes[0].set_xlabel("s", fontsize=7)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _viewer_kbps(
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


def _draw_fps(ax: Any, snap: dict[str, Any]) -> None:
    if snap["fps_out"]:
        ax.plot(*zip(*snap["fps_out"], strict=True), label="out", color="#1f77b4")
    fps_in = [(r["t"], r["fps_in"]) for r in snap["samples"] if "fps_in" in r]
    if fps_in:
        ax.plot(*zip(*fps_in, strict=True), label="in", color="#ff7f0e", alpha=0.8)
    ax.set_ylim(bottom=0)


def _draw_latency(ax: Any, snap: dict[str, Any]) -> None:
    if snap["latency"]:
        ax.plot(*zip(*snap["latency"], strict=True), label="capture → out", lw=0.8)
    series: dict[str, list[tuple[float, float]]] = {}
    for row in snap["samples"]:
        for key, value in row.items():
            if key.startswith("glass:"):
                series.setdefault(key, []).append((row["t"], value))
    for key, points in series.items():
        ax.plot(*zip(*points, strict=True), label=f"glass-to-glass {key[6:]}", lw=1.2)
    ax.set_ylim(bottom=0)


def _draw_stages(ax: Any, snap: dict[str, Any]) -> None:
    series: dict[str, list[tuple[float, float]]] = {}
    for t, stages in snap["stages"]:
        for name, value in stages.items():
            series.setdefault(name, []).append((t, value))
    for name, points in sorted(series.items()):
        ax.plot(*zip(*points, strict=True), label=name, lw=0.8)
    ax.set_ylim(bottom=0)


def _draw_lag(ax: Any, snap: dict[str, Any]) -> None:
    if snap["lag"]:
        ax.plot(*zip(*snap["lag"], strict=True), color="#d62728", lw=0.8)
    ax.set_ylim(bottom=0)


def _draw_kbps(ax: Any, snap: dict[str, Any]) -> None:
    series: dict[str, list[tuple[float, float]]] = {}
    for row in snap["samples"]:
        for key, value in row.items():
            if key.startswith("kbps:"):
                series.setdefault(key[5:], []).append((row["t"], value))
    for name, points in series.items():
        ax.plot(*zip(*points, strict=True), label=name, lw=1)
    ax.set_ylim(bottom=0)


def _draw_drops(ax: Any, snap: dict[str, Any]) -> None:
    series: dict[str, list[tuple[float, int]]] = {}
    for t, reason, count in snap["drops"]:
        series.setdefault(reason, []).append((t, count))
    for reason, points in sorted(series.items()):
        ax.plot(*zip(*points, strict=True), label=reason, marker=".", lw=0.8)
    ax.set_ylim(bottom=0)


_DRAW = {
    "fps": _draw_fps,
    "latency": _draw_latency,
    "stages": _draw_stages,
    "lag": _draw_lag,
    "kbps": _draw_kbps,
    "drops": _draw_drops,
}
