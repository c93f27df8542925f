"""Live controls for a running pipeline or a served stream (ipywidgets).

Every live setting has a control: strategy specs are comboboxes (pick a registered name or
type a spec such as ``drop_oldest:6``), numbers are sliders with the config model's ranges,
detectors are a multi-select, overlay and lip sync checkboxes, network conditions and the
playout delay comboboxes of examples, the RTP clock, the passthrough join and the camera's audio
(``auto``/``opus``/``off``) dropdowns. Each change goes through one ``update(...)``
(validated by the config model, applied at a frame boundary). The widgets always show the
settings *as applied*: the panel listens for ``SettingsChanged`` on the pipeline's bus, so
changes from code, from the HTTP API or from another panel show up too; a rejected value
snaps back and its one-line error shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from typing import Any

from streamlab.config import field_range
from streamlab.errors import StreamlabError
from streamlab.events import Event, SettingsChanged
from streamlab.lab.target import LIVE_FIELDS, Target, resolve
from streamlab.strategies import registry_for

STRATEGY_FIELDS = ("buffering", "skipping", "quality", "codec")
SLIDER_FIELDS = (
    "target_fps",
    "frame_skip_interval",
    "analysis_frame_interval",
    "detection_frame_interval",
    "analysis_lag_budget_ms",
    "stage_delay_ms",
)
QUALITY_CHOICES = ["fixed:source", "fixed:1280x720", "fixed:960x540", "fixed:640x360",
                   "fixed:480x270", "fixed:320x180", "aimd", "bandwidth"]  # fmt: skip
NETWORK_CHOICES = ["", "rate=2M,delay=20ms", "rate=800k,delay=40ms,jitter=5ms",
                   "rate=300k,delay=80ms,loss=1%", "loss=5%"]  # fmt: skip
TEXT_FIELDS = {  # free text with examples: (choices, placeholder)
    "network": (NETWORK_CHOICES, "rate=800k,delay=40ms,jitter=5ms,loss=1%"),
    "playout_delay": (["0", "browser", "100", "300", "0-1000"], "0, browser, MS or MIN-MAX"),
}


def strategy_choices(family: str) -> list[str]:
    """Example specs of a family for a dropdown: each registered name."""
    if family == "quality":
        return QUALITY_CHOICES
    try:
        registry = registry_for(family)
    except ModuleNotFoundError:
        return []
    return registry.names()


CHOICE_FIELDS = ("rtp_clock", "passthrough_join", "audio")


def literal_choices(name: str) -> list[str]:
    """The values a ``Literal`` setting allows, from the config model."""
    from typing import get_args

    from streamlab.config import StreamingConfig

    return [str(v) for v in get_args(StreamingConfig.model_fields[name].annotation)]


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
    """Live controls for a ``Pipeline``, a ``LabServer`` or ``(server, stream name)``.

    Shows itself as the last expression of a cell. ``await panel.apply(**settings)`` does
    from code what the widgets do; ``await panel.stop()`` detaches the panel.
    """

    def __init__(self, target: Any, *, stats_every_s: float = 1.0) -> None:
        import ipywidgets as widgets

        self.target: Target = resolve(target)
        self.pipeline = self.target.pipeline
        self.stats_every_s = stats_every_s
        self.applied: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.status = widgets.HTML(value="ready")
        self.state_view = widgets.HTML()
        self.stats_view = widgets.HTML()
        self.controls: dict[str, Any] = {}
        self._syncing = False
        fields = set(LIVE_FIELDS)
        settings = self.target.settings()
        wide = {"description_width": "150px"}
        for name in STRATEGY_FIELDS:
            box = widgets.Combobox(value=str(settings[name]), options=strategy_choices(name),
                                   description=name, ensure_option=False,
                                   continuous_update=False, style=wide)  # fmt: skip
            self.controls[name] = box
        for name, (examples, placeholder) in TEXT_FIELDS.items():
            if name in fields:
                self.controls[name] = widgets.Combobox(
                    value=str(settings[name]), options=examples, description=name,
                    ensure_option=False, continuous_update=False, style=wide,
                    placeholder=placeholder,
                )  # fmt: skip
        for name in CHOICE_FIELDS:
            if name in fields:
                self.controls[name] = widgets.Dropdown(
                    value=str(settings[name]), options=literal_choices(name), description=name,
                    style=wide,
                )  # fmt: skip
        for name in SLIDER_FIELDS:
            if name not in fields:
                continue
            low, high = _bounds(name)
            self.controls[name] = widgets.IntSlider(value=int(settings[name]), min=low, max=high,
                                                    description=name, continuous_update=False,
                                                    style=wide)  # fmt: skip
        self.controls["overlay"] = widgets.Checkbox(
            value=bool(settings["overlay"]), description="burn boxes into the video",
            style=wide,
        )  # fmt: skip
        if "lip_sync" in fields:
            self.controls["lip_sync"] = widgets.Checkbox(
                value=bool(settings["lip_sync"]), description="hold the video for the sound",
                style=wide,
            )  # fmt: skip
        choices = detector_choices()
        self.detectors = widgets.SelectMultiple(
            options=choices, value=tuple(n for n in settings["analyze"] if n in choices),
            description="analyze", style=wide,
        )  # fmt: skip
        self.controls["analyze"] = self.detectors
        for name, control in self.controls.items():
            control.add_class(f"sl-setting-{name}")
            control.observe(self._on_change(name), names="value")
        title = widgets.HTML(f"<b>streamlab</b> — {html.escape(self.target.label)}")
        self.widget = widgets.VBox(
            [widgets.HBox([title, self.state_view]), *self.controls.values(), self.status,
             self.stats_view]
        )  # fmt: skip
        self.widget.add_class("sl-control-panel")
        self._pending: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.pipeline.bus.subscribe(self._on_event)
        self._stats_task: asyncio.Task[None] | None = None
        self._show_state()
        if self._loop is not None:
            self.start_stats()

    # -- changes -----------------------------------------------------------------------

    def _on_change(self, name: str) -> Any:
        def changed(change: dict[str, Any]) -> None:
            if self._syncing:
                return
            value = change["new"]
            if name == "analyze":
                value = list(value)
            self._schedule({name: value})

        return changed

    def _schedule(self, changes: dict[str, Any]) -> None:
        loop = self._loop or asyncio.get_event_loop()
        task = loop.create_task(self.apply(**changes))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def apply(self, **changes: Any) -> bool:
        """Apply changes; returns False (widgets snap back, the error shows) when rejected."""
        try:
            await self.target.update(**changes)
        except (StreamlabError, KeyError, ValueError) as exc:
            message = str(exc).strip("'\"").splitlines()[0] if str(exc) else type(exc).__name__
            self.errors.append(message)
            self.status.value = f"<span style='color:#b00'>{html.escape(message)}</span>"
            self.sync()
            return False
        self.applied.append(changes)
        shown = ", ".join(f"{k}={v}" for k, v in changes.items())
        self.status.value = f"applied {html.escape(shown)}"
        self.sync()
        return True

    def sync(self) -> dict[str, Any]:
        """Set every control to the setting as applied now (no update is sent back)."""
        settings = self.target.settings()
        self._syncing = True
        try:
            for name, control in self.controls.items():
                value = settings.get(name)
                if name == "analyze":
                    value = tuple(n for n in value or () if n in control.options)
                elif isinstance(control.value, str):
                    value = "" if value is None else str(value)
                if control.value != value:
                    control.value = value
        finally:
            self._syncing = False
        self._show_state()
        return settings

    def _on_event(self, event: Event) -> None:
        if isinstance(event, SettingsChanged) and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self.sync)

    # -- state and stats ---------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return not self.target.running

    def _show_state(self) -> None:
        stopped = self.stopped
        self.state_view.value = (
            "<span style='color:#b00'>&nbsp;stopped</span>" if stopped
            else "<span style='color:#080'>&nbsp;running</span>"
        )  # fmt: skip
        for control in self.controls.values():
            control.disabled = stopped

    def start_stats(self) -> None:
        """Refresh the state and the stats table every ``stats_every_s`` seconds."""
        if self._stats_task is None:
            loop = self._loop or asyncio.get_running_loop()
            self._stats_task = loop.create_task(self._refresh_stats(), name="lab-panel")

    async def stop(self) -> None:
        """Stop listening and refreshing (the widgets stay as they are)."""
        self._unsubscribe()
        task, self._stats_task = self._stats_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pending in list(self._pending):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pending

    def refresh_stats(self) -> dict[str, Any]:
        """Redraw the stats table now; returns the pipeline's stats."""
        stats: dict[str, Any] = dict(self.pipeline.stats())
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in stats.items()
            if not isinstance(v, dict | list)
        )
        self.stats_view.value = f"<table style='font-size:11px'>{rows}</table>"
        self._show_state()
        return stats

    async def _refresh_stats(self) -> None:
        while True:
            self.refresh_stats()
            await asyncio.sleep(self.stats_every_s)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
