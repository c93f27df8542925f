"""Health per stream: fps against expected, connection stability, analysis lag."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from streamlab.clock import now
from streamlab.events import Event, EventBus, FrameDelivered, Reconnecting, Stalled, StateChanged
from streamlab.observe.rates import RateMeter


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A verdict and the reasons for it."""

    stream: str
    status: Health
    reasons: tuple[str, ...] = ()
    fps: float = 0.0
    expected_fps: float = 0.0
    state: str = ""
    analysis_lag_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream, "status": str(self.status), "reasons": list(self.reasons),
            "fps": self.fps, "expected_fps": self.expected_fps, "state": self.state,
            "analysis_lag_s": self.analysis_lag_s,
        }  # fmt: skip


class HealthObserver:
    """Watches one stream's events and judges its health on demand."""

    def __init__(
        self,
        bus: EventBus,
        stream: str,
        *,
        expected_fps: float,
        lag_budget_s: float = 0.5,
        window_s: float = 5.0,
    ) -> None:
        self.stream = stream
        self.expected_fps = expected_fps
        self.lag_budget_s = lag_budget_s
        self.window_s = window_s
        self.fps = RateMeter(window_s)
        self.state = "initializing"
        self.lag_s: float | None = None
        self.started = now()
        self._trouble: deque[float] = deque(maxlen=256)
        self._unsubscribe = bus.subscribe(self._observe)

    def _observe(self, event: Event) -> None:
        if event.stream != self.stream:
            return
        if isinstance(event, FrameDelivered):
            self.fps.tick(event.at)
            self.lag_s = event.analysis_lag_s
        elif isinstance(event, Reconnecting | Stalled):
            self._trouble.append(event.at)
        elif isinstance(event, StateChanged):
            self.state = event.new

    def close(self) -> None:
        self._unsubscribe()

    def report(self) -> HealthReport:
        current = now()
        fps = round(self.fps.rate(current), 2)
        reasons: list[str] = []
        status = Health.HEALTHY
        warming_up = current - self.started < self.window_s
        if self.state in ("error", "stopped", "reconnecting"):
            status = Health.UNHEALTHY
            reasons.append(f"stream is {self.state}")
        elif self.expected_fps > 0 and not warming_up:
            ratio = fps / self.expected_fps
            if ratio < 0.5:
                status = Health.UNHEALTHY
                reasons.append(f"fps {fps:g} is under half of the expected {self.expected_fps:g}")
            elif ratio < 0.9:
                status = Health.DEGRADED
                reasons.append(f"fps {fps:g} is under 90% of the expected {self.expected_fps:g}")
        recent = sum(1 for t in self._trouble if current - t < 60)
        if recent and status is Health.HEALTHY:
            status = Health.DEGRADED
        if recent:
            reasons.append(f"{recent} reconnect(s)/stall(s) in the last minute")
        if self.lag_s is not None and self.lag_s > self.lag_budget_s:
            if status is Health.HEALTHY:
                status = Health.DEGRADED
            reasons.append(
                f"analysis lag {self.lag_s * 1000:.0f} ms over budget "
                f"{self.lag_budget_s * 1000:.0f} ms"
            )
        return HealthReport(self.stream, status, tuple(reasons), fps, self.expected_fps,
                            self.state, self.lag_s)  # fmt: skip
