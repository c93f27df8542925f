"""Drawing a LivePlot: one matplotlib Agg figure (no ipympl), a subplot per metric, its
lines updated in place and rendered to PNG — in an executor thread, never on the loop."""

from __future__ import annotations

import io
import threading
from typing import Any

from streamlab.lab.liveplot_series import SERIES, TITLES, y_limits


class PlotCanvas:
    """The figure of ``metrics``; ``render(snapshot)`` returns PNG bytes."""

    def __init__(self, metrics: tuple[str, ...], width_in: float = 9.0) -> None:
        self.metrics = metrics
        self.width_in = width_in
        self._lock = threading.Lock()
        self._canvas: Any = None
        self._axes: dict[str, Any] = {}
        self._lines: dict[tuple[str, str], Any] = {}
        self._marker_artists: dict[tuple[float, str], list[Any]] = {}

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

    def render(self, snap: dict[str, Any]) -> bytes:
        """Draw ``snap`` (``LivePlot.snapshot()``) to PNG bytes."""
        with self._lock:
            if self._canvas is None:
                self._setup()
            low, high = max(0.0, snap["low"]), max(snap["now"], 1.0)
            for metric, ax in self._axes.items():
                series = SERIES[metric](snap)
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
                bottom, top = y_limits(metric, series)
                ax.set_ylim(bottom=bottom, top=top)
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
