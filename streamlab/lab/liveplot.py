"""Live matplotlib plots of a running stream, refreshed about twice a second.

The plot subscribes to the pipeline's events (frames delivered and dropped, quality
changes) and, for a served stream, polls the server's per-viewer figures and what its
quality viewers scored (``sl.lab.serve(..., measure_quality=True)``). Figures are
rendered to PNG with the Agg backend in an executor thread (no ipympl needed) and shown in
an ``ipywidgets.Image``, only while the plot is on screen (the browser reports it).
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

METRICS = ("fps", "latency", "stages", "lag", "kbps", "drops", "psnr", "ssim")
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
}


class LivePlot:
    """Plots ``metrics`` of ``target`` over the last ``window_s`` seconds at ``hz``.

    ``metrics``: any of fps (in/out), latency (pipeline, and glass-to-glass from
    ``players``' frame codes), stages (per-stage latency), lag (analysis lag), kbps (per
    viewer, served streams), drops (by reason), psnr and ssim (per quality viewer of a
    stream served with ``measure_quality=True``, named as in kbps). Quality rung changes
    are vertical markers on every plot. ``plot.data()`` returns what is plotted as a pandas
    DataFrame.
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
        scored = [m for m in metrics if m in QUALITY_METRICS]
        lab = self.target.lab
        if scored and (lab is None or self.target.name != lab.name or not lab.measures_quality):
            raise ValueError(f"metric {scored[0]!r} needs a stream served with "
                             "sl.lab.serve(..., measure_quality=True)")  # fmt: skip
        self.metrics = tuple(metrics)
        self.window_s = window_s
        self.hz = hz
        self.players = tuple(players)
        self.width_in = width_in
        from streamlab.lab.visibility import VisibilityProbe

        self.image = widgets.Image(format="png")
        self.state_view = widgets.HTML()
        self.probe = VisibilityProbe()
        self.widget = widgets.VBox([self.state_view, self.image, self.probe])
        self.widget.add_class("sl-live-plot")
        self.widget.add_class("sl-visibility-root")
        self.renders = 0
        self.started = time.monotonic()
        self._epoch_started = time.time() - (time.monotonic() - self.started)
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
        self._scores: dict[str, deque[tuple[float, float, float]]] = {}  # viewer -> t, psnr, ssim
        self._scored: dict[str, int] = {}  # viewer -> frames taken from it
        self._unsubscribe = self.target.pipeline.bus.subscribe(self._on_event)
        self._task: asyncio.Task[None] | None = None
        self._render_lock = threading.Lock()
        self._canvas: Any = None
        self._axes: dict[str, Any] = {}
        self._lines: dict[tuple[str, str], Any] = {}
        self._marker_artists: dict[tuple[float, str], list[Any]] = {}
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
        if any(m in QUALITY_METRICS for m in self.metrics):
            self._take_scores()
        return row

    def _take_scores(self) -> None:
        """What each quality viewer scored since the last sample, at its arrival time."""
        lab = self.target.lab
        for viewer in lab.quality_viewers if lab is not None else ():
            count, new = viewer.scored(self._scored.get(viewer.label, 0))
            self._scored[viewer.label] = count
            with self._lock:
                points = self._scores.setdefault(viewer.label, deque(maxlen=4000))
                points.extend((s.at_ms / 1000 - self._epoch_started, s.psnr_y, s.ssim_y)
                              for s in new)  # fmt: skip

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
            if self.renders == 0 or self.probe.visible is not False:  # none drawn unseen
                snapshot = self.snapshot()
                png = await loop.run_in_executor(None, self._render, snapshot)
                self.image.value = png
                self.renders += 1
            spent = loop.time() - started  # never more than half the time drawing
            await asyncio.sleep(max(0.05, 1 / self.hz - spent, spent))

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
                "latency": _binned([p for p in self._latency if p[0] >= low]),
                "stages": _binned_stages([p for p in self._stages if p[0] >= low]),
                "lag": _binned([p for p in self._lag if p[0] >= low]),
                "drops": sorted((s + 0.5, r, n) for (s, r), n in self._drops.items() if s >= low),
                "markers": [m for m in self._markers if m[0] >= low],
                "samples": [r for r in self._samples if r["t"] >= low],
                "psnr": {v: _binned([(t, p) for t, p, _ in points if t >= low])
                         for v, points in self._scores.items()},
                "ssim": {v: _binned([(t, s) for t, _, s in points if t >= low])
                         for v, points in self._scores.items()},
            }  # fmt: skip

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
        for metric in QUALITY_METRICS:
            for viewer, points in snap[metric].items():
                rows += [(t, metric, viewer, v) for t, v in points]
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

    def _setup(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        count = len(self.metrics)
        cols = 2 if count > 2 else count
        rows = (count + cols - 1) // cols
        figure = Figure(figsize=(self.width_in, 1.9 * rows), dpi=72)
        figure.subplots_adjust(left=0.06, right=0.98, top=0.93, bottom=0.08,
                               hspace=0.45, wspace=0.15)  # fmt: skip
        self._canvas = FigureCanvasAgg(figure)
        axes = figure.subplots(rows, cols, squeeze=False).ravel()
        for ax in axes[count:]:
            ax.set_visible(False)
        for ax, metric in zip(axes, self.metrics, strict=False):
            ax.set_title(TITLES[metric], fontsize=9)
            ax.tick_params(labelsize=7)
        self._axes = dict(zip(self.metrics, axes, strict=False))

    def _render(self, snap: dict[str, Any]) -> bytes:
        with self._render_lock:
            if self._canvas is None:
                self._setup()
            low, high = max(0.0, snap["low"]), max(snap["now"], 1.0)
            for metric, ax in self._axes.items():
                series = _SERIES[metric](snap)
                added = False
                for name, points in series.items():
                    xs, ys = (list(v) for v in zip(*points, strict=True)) if points else ([], [])
                    line = self._lines.get((metric, name))
                    if line is None:
                        (line,) = ax.plot(xs, ys, label=name, lw=1)
                        self._lines[(metric, name)] = line
                        added = True
                    else:
                        line.set_data(xs, ys)
                for (kind, name), line in self._lines.items():
                    if kind == metric and name not in series:
                        line.set_data([], [])
                if added:
                    ax.legend(fontsize=6, loc="upper left")
                ax.relim()
                ax.autoscale_view(scalex=False)
                ax.set_xlim(low, high)
                ax.set_ylim(bottom=0)
            self._draw_markers(snap["markers"], low)
            buffer = io.BytesIO()
            self._canvas.print_png(buffer)
            return buffer.getvalue()

    def _draw_markers(self, markers: list[tuple[float, str]], low: float) -> None:
        for key in [k for k in self._marker_artists if k[0] < low]:
            for artist in self._marker_artists.pop(key):
                artist.remove()
        first = self.metrics[0]
        for t, label in markers:
            if (t, label) in self._marker_artists:
                continue
            artists = []
            for metric, ax in self._axes.items():
                artists.append(ax.axvline(t, color="#c0c", lw=0.8, ls="--"))
                if metric == first:
                    artists.append(ax.annotate(label, (t, 1), xycoords=("data", "axes fraction"),
                                               fontsize=6, rotation=90, va="top", ha="right",
                                               color="#a0a"))  # fmt: skip
            self._marker_artists[(t, label)] = artists

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


Points = list[tuple[float, float]]
BIN_S = 0.5  # per-frame series are plotted as means over this


def _binned(points: Points) -> Points:
    bins: dict[int, list[float]] = {}
    for t, value in points:
        bins.setdefault(int(t / BIN_S), []).append(value)
    return [((k + 0.5) * BIN_S, sum(v) / len(v)) for k, v in sorted(bins.items())]


def _binned_stages(
    points: list[tuple[float, dict[str, float]]],
) -> list[tuple[float, dict[str, float]]]:
    names = {name for _, stages in points for name in stages}
    per_name = {n: _binned([(t, st[n]) for t, st in points if n in st]) for n in names}
    rows: dict[float, dict[str, float]] = {}
    for name, binned in per_name.items():
        for t, value in binned:
            rows.setdefault(t, {})[name] = value
    return sorted(rows.items())


def _fps_series(snap: dict[str, Any]) -> dict[str, Points]:
    fps_in = [(r["t"], r["fps_in"]) for r in snap["samples"] if "fps_in" in r]
    return {"out": snap["fps_out"], "in": fps_in}


def _prefixed(snap: dict[str, Any], prefix: str, label: str = "") -> dict[str, Points]:
    series: dict[str, Points] = {}
    for row in snap["samples"]:
        for key, value in row.items():
            if key.startswith(prefix):
                series.setdefault(label + key[len(prefix) :], []).append((row["t"], value))
    return series


def _latency_series(snap: dict[str, Any]) -> dict[str, Points]:
    return {"capture → out": snap["latency"], **_prefixed(snap, "glass:", "glass-to-glass ")}


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


_SERIES = {
    "fps": _fps_series,
    "latency": _latency_series,
    "stages": _stage_series,
    "lag": lambda snap: {"analysis": snap["lag"]},
    "kbps": lambda snap: _prefixed(snap, "kbps:"),
    "drops": _drop_series,
    "psnr": lambda snap: snap["psnr"],
    "ssim": lambda snap: snap["ssim"],
}
