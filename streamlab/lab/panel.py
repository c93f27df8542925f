"""An ipywidgets control panel that tunes a running pipeline live.

Strategy fields are comboboxes (pick a registered spec or type one, e.g. ``drop_oldest:6``);
numeric settings are sliders with the config model's own ranges; detectors are checkboxes.
Every change goes through ``pipeline.update(...)``, so it is validated by the config model
and applied at a frame boundary; a bad value shows its one-line error in the panel.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from typing import Any

from streamlab.config import StreamingConfig, field_range
from streamlab.errors import StreamlabError
from streamlab.strategies import registry_for

STRATEGY_FIELDS = ("buffering", "skipping", "quality", "codec")
SLIDER_FIELDS = (
    "target_fps",
    "frame_skip_interval",
    "analysis_frame_interval",
    "detection_frame_interval",
    "analysis_lag_budget_ms",
)


def strategy_choices(family: str) -> list[str]:
    """Example specs of a family for a dropdown: each name with its default arguments."""
    try:
        registry = registry_for(family)
    except ModuleNotFoundError:
        return []
    return registry.names()


def detector_choices() -> list[str]:
    """Names of the registered detectors (empty when the analysis package is absent)."""
    try:
        from streamlab.analysis.detectors import detectors
    except ModuleNotFoundError:
        return []
    return list(detectors.names())


def _bounds(name: str) -> tuple[int, int]:
    low, high = field_range(name) or (0, 100)
    return int(low), int(high)


class ControlPanel:
    """Live controls for one pipeline. ``display(panel.widget)`` in a notebook."""

    def __init__(self, pipeline: Any, *, stats_every_s: float = 1.0) -> None:
        import ipywidgets as widgets

        self.pipeline = pipeline
        self.stats_every_s = stats_every_s
        config: StreamingConfig = pipeline.config
        self.applied: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.status = widgets.HTML(value="ready")
        self.stats_view = widgets.HTML()
        self.controls: dict[str, Any] = {}
        for name in STRATEGY_FIELDS:
            box = widgets.Combobox(
                value=str(getattr(config, name)),
                options=strategy_choices(name),
                description=name,
                ensure_option=False,
                continuous_update=False,
            )
            box.observe(self._on_change(name), names="value")
            self.controls[name] = box
        for name in SLIDER_FIELDS:
            low, high = _bounds(name)
            slider = widgets.IntSlider(
                value=int(getattr(config, name)),
                min=low,
                max=high,
                description=name,
                continuous_update=False,
                style={"description_width": "initial"},
            )
            slider.observe(self._on_change(name), names="value")
            self.controls[name] = slider
        self.detectors = widgets.SelectMultiple(
            options=detector_choices(),
            value=tuple(n for n in config.analyze if n in detector_choices()),
            description="analyze",
        )
        self.detectors.observe(
            lambda change: self._schedule({"analyze": list(change["new"])}), names="value"
        )
        self.widget = widgets.VBox(
            [
                widgets.HTML(f"<b>streamlab</b> — {html.escape(str(self._stream_name()))}"),
                *self.controls.values(),
                self.detectors,
                self.status,
                self.stats_view,
            ]
        )
        self._pending: set[asyncio.Task[bool]] = set()
        self._stats_task: asyncio.Task[None] | None = None

    def _stream_name(self) -> str:
        return str(getattr(self.pipeline, "name", "pipeline"))

    def _on_change(self, name: str) -> Any:
        return lambda change: self._schedule({name: change["new"]})

    def _schedule(self, changes: dict[str, Any]) -> None:
        task = asyncio.get_event_loop().create_task(self.apply(**changes))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def apply(self, **changes: Any) -> bool:
        """Apply changes to the pipeline; returns False (and shows why) when rejected."""
        try:
            await self.pipeline.update(**changes)
        except StreamlabError as exc:
            self.errors.append(str(exc))
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
            return False
        self.applied.append(changes)
        shown = ", ".join(f"{k}={v}" for k, v in changes.items())
        self.status.value = f"applied {html.escape(shown)}"
        return True

    def start_stats(self) -> None:
        """Refresh the stats table every ``stats_every_s`` seconds."""
        if self._stats_task is None:
            self._stats_task = asyncio.get_event_loop().create_task(self._refresh_stats())

    async def stop(self) -> None:
        task, self._stats_task = self._stats_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pending in list(self._pending):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pending

    def refresh_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = dict(self.pipeline.stats())
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in stats.items()
            if not isinstance(v, dict | list)
        )
        self.stats_view.value = f"<table>{rows}</table>"
        return stats

    async def _refresh_stats(self) -> None:
        while True:
            self.refresh_stats()
            await asyncio.sleep(self.stats_every_s)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
