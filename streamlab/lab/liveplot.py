"""Live matplotlib plots of a running stream, refreshed about twice a second.

The plot subscribes to the pipeline's events (frames delivered and dropped, quality
changes) and, for a served stream, polls the server's per-viewer figures and what its
quality viewers scored (``sl.lab.serve(..., measure_quality=True)``). Figures are
rendered to PNG with the Agg backend in an executor thread (no ipympl needed) and shown in
an ``ipywidgets.Image``, only while the plot is on screen (the browser reports it).

This module collects the data; ``liveplot_series`` turns it into each metric's series and
``liveplot_draw`` draws them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter, deque
from typing import Any

from streamlab.events import Event, FrameDelivered, FrameDropped, QualityChanged, SettingsChanged
from streamlab.lab.liveplot_draw import PlotCanvas
from streamlab.lab.liveplot_series import (
    METRICS,
    QUALITY_METRICS,
    TITLES,
    audio_level,
    binned,
    binned_stages,
    viewer_kbps,
)
from streamlab.lab.target import Target, resolve

__all__ = ["METRICS", "QUALITY_METRICS", "TITLES", "LivePlot"]


class LivePlot:
    """Plots ``metrics`` of ``target`` over the last ``window_s`` seconds at ``hz``.

    ``metrics``: any of fps (in/out), latency (pipeline, and glass-to-glass from
    ``players``' frame codes), stages (per-stage latency), lag (analysis lag), kbps (per
    viewer, served streams), drops (by reason), psnr and ssim (per quality viewer of a
    stream served with ``measure_quality=True``, named as in kbps), audio (the camera's
    audio level in dBov as the server measures it, served streams with audio; series
    ``level``; gaps where the server has no level, see ``StreamAudio``). Quality rung changes
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
        self.canvas = PlotCanvas(self.metrics, width_in)
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
        """Take one sample of the polled figures (fps in, per-viewer kbit/s, glass-to-glass,
        the camera's audio level)."""
        t = self._t()
        stats = self.target.pipeline.stats()
        row: dict[str, Any] = {"t": t}
        frames_in = int(stats.get("frames_in", 0))
        if self._last_in is not None and t > self._last_in[0]:
            row["fps_in"] = (frames_in - self._last_in[1]) / (t - self._last_in[0])
        self._last_in = (t, frames_in)
        info = self.target.stream_info()
        for viewer_id, kbps in viewer_kbps(info, t, self._last_bytes).items():
            row[f"kbps:{viewer_id}"] = kbps
        level = audio_level(info)
        if level is not None:
            row["audio:level"] = level
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
                png = await loop.run_in_executor(None, self.canvas.render, snapshot)
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
                "latency": binned([p for p in self._latency if p[0] >= low]),
                "stages": binned_stages([p for p in self._stages if p[0] >= low]),
                "lag": binned([p for p in self._lag if p[0] >= low]),
                "drops": sorted((s + 0.5, r, n) for (s, r), n in self._drops.items() if s >= low),
                "markers": [m for m in self._markers if m[0] >= low],
                "samples": [r for r in self._samples if r["t"] >= low],
                "psnr": {v: binned([(t, p) for t, p, _ in points if t >= low])
                         for v, points in self._scores.items()},
                "ssim": {v: binned([(t, s) for t, _, s in points if t >= low])
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
                elif key.startswith("audio:"):
                    rows.append((row["t"], "audio", key[6:], value))
        return pd.DataFrame(rows, columns=["t", "metric", "series", "value"])

    # -- drawing (executor thread) -----------------------------------------------------

    def render(self) -> bytes:
        """Draw the current window to PNG bytes (what the widget shows)."""
        return self.canvas.render(self.snapshot())

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
