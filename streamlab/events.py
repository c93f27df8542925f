"""Pipeline events and a tiny synchronous event bus that observers subscribe to.

Events are emitted from whichever thread produced them (a source thread, the event
loop, an executor); observers must be quick and thread-safe (Prometheus metrics are).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from streamlab.clock import now

log = structlog.get_logger("streamlab.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event: which stream, and when."""

    stream: str
    at: float = field(default_factory=now, kw_only=True)


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    old: str
    new: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FrameCaptured(Event):
    seq: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class FrameDropped(Event):
    """A frame was dropped; ``where`` is the stage (``buffer``, ``skip``, ``viewer``)."""

    seq: int
    where: str
    reason: str


@dataclass(frozen=True, slots=True)
class FrameDelivered(Event):
    """A frame left the pipeline; ``stages`` are seconds since capture per stage."""

    seq: int
    latency_s: float
    stages: dict[str, float]
    analysis_lag_frames: int | None = None
    analysis_lag_s: float | None = None


@dataclass(frozen=True, slots=True)
class AnalysisSkipped(Event):
    """A frame went on without analysis; ``reason`` is ``strategy`` or ``busy``."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class AnalysisStarted(Event):
    seq: int
    detectors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AnalysisCompleted(Event):
    seq: int
    detector_s: dict[str, float]
    detections: dict[str, int]


@dataclass(frozen=True, slots=True)
class Reconnecting(Event):
    attempt: int
    delay_s: float
    error: str


@dataclass(frozen=True, slots=True)
class Stalled(Event):
    silent_s: float


@dataclass(frozen=True, slots=True)
class SettingsChanged(Event):
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class QualityChanged(Event):
    """A viewer (or, with ``viewer`` empty, the whole stream) moved to another rung."""

    old: str
    new: str
    reason: str
    viewer: str = ""


@dataclass(frozen=True, slots=True)
class LinkProbed(Event):
    """A probe of a viewer's link ended: ``outcome`` passed, overuse or loss."""

    viewer: str
    kind: str
    rate_bps: int
    outcome: str
    estimate_bps: int | None


Observer = Callable[[Event], None]


class EventBus:
    """Delivers each event to every subscribed observer; a failing observer is logged, not fatal."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self._lock = threading.Lock()

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Add an observer; returns a function that removes it."""
        with self._lock:
            self._observers = [*self._observers, observer]

        def unsubscribe() -> None:
            with self._lock:
                self._observers = [o for o in self._observers if o is not observer]

        return unsubscribe

    def emit(self, event: Event) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception as exc:  # an observer must never break the stream
                log.warning("observer_failed", observer=repr(observer), error=str(exc))
