"""Skipping strategies: which frames get analysed, and by which detectors.

One decision: ``select(frame, state, detectors)`` returns the detectors to run on this
frame — all of them, some (``motion_gated``, ``intervals``), or none (the frame is skipped
for analysis; the video itself never skips).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from streamlab.errors import ConfigError
from streamlab.frame import Frame
from streamlab.registry import Registry, Spec

if TYPE_CHECKING:
    from streamlab.config import StreamingConfig

CHEAP_DETECTORS = frozenset({"motion"})


@dataclass(slots=True)
class AnalysisState:
    """What a skipping strategy may look at when it decides."""

    in_flight: int = 0
    max_in_flight: int = 1
    last_submitted_seq: int | None = None
    last_submitted_at: float | None = None
    last_result_seq: int | None = None
    lag_frames: int | None = None
    lag_s: float | None = None
    motion_seen: bool = False
    frames_since_detection: int = 1 << 30


class SkipStrategy(Protocol):
    """Decides, per frame, which of the configured detectors run."""

    name: str

    def select(
        self, frame: Frame, state: AnalysisState, detectors: tuple[str, ...]
    ) -> tuple[str, ...]: ...


skipping: Registry[SkipStrategy] = Registry("skipping")


def _positive(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value:g}")


@skipping.register("none")
class AnalyseEvery:
    """Analyse every frame (frames that find the executor busy are still skipped)."""

    name = "none"

    def select(
        self, frame: Frame, state: AnalysisState, detectors: tuple[str, ...]
    ) -> tuple[str, ...]:
        return detectors


@skipping.register("every_nth")
class EveryNth:
    """Analyse one frame in N."""

    def __init__(self, n: int = 5) -> None:
        _positive("every_nth N", n, 1, 1000)
        self.n = n
        self.name = f"every_nth:{n}"

    def select(
        self, frame: Frame, state: AnalysisState, detectors: tuple[str, ...]
    ) -> tuple[str, ...]:
        last = state.last_submitted_seq
        return detectors if last is None or frame.seq - last >= self.n else ()


@skipping.register("target_fps")
class TargetFps:
    """Analyse at most F frames per second (by capture time)."""

    def __init__(self, fps: float = 10.0) -> None:
        _positive("target_fps F", fps, 0.1, 240)
        self.fps = fps
        self.name = f"target_fps:{fps:g}"

    def select(
        self, frame: Frame, state: AnalysisState, detectors: tuple[str, ...]
    ) -> tuple[str, ...]:
        last = state.last_submitted_at
        due = last is None or frame.captured_at - last >= (1.0 / self.fps) * 0.999
        return detectors if due else ()


@skipping.register("adaptive")
class Adaptive:
    """Skip while analysis is behind: nothing in flight, and the last lag within BUDGET_MS."""

    def __init__(self, budget_ms: float = 500.0) -> None:
        _positive("adaptive BUDGET_MS", budget_ms, 1, 60_000)
        self.budget_s = budget_ms / 1000.0
        self.name = f"adaptive:{budget_ms:g}"

    def select(
        self, frame: Frame, state: AnalysisState, detectors: tuple[str, ...]
    ) -> tuple[str, ...]:
        if state.in_flight > 0:
            return ()
        if state.lag_s is not None and state.lag_s > self.budget_s:
            # over budget: analyse only every other opportunity so the lag can fall
            last = state.last_submitted_seq
            return detectors if last is None or frame.seq - last >= 2 else ()
        return detectors


@skipping.register("motion_gated")
class MotionGated:
    """Run ``motion`` on every frame; the other detectors only while motion is seen."""

    name = "motion_gated"

    def select(
        self, frame: Frame, state: AnalysisState, detectors: tuple[str, ...]
    ) -> tuple[str, ...]:
        cheap = tuple(d for d in detectors if d in CHEAP_DETECTORS) or ("motion",)
        expensive = tuple(d for d in detectors if d not in CHEAP_DETECTORS)
        return (*cheap, *expensive) if state.motion_seen else cheap


@skipping.register("intervals")
class Intervals:
    """The seed's schedule: cheap analysis every A frames, expensive detection every D."""

    def __init__(self, analysis_every: int = 30, detection_every: int = 60) -> None:
        _positive("intervals A", analysis_every, 1, 1000)
        _positive("intervals D", detection_every, 1, 10000)
        self.analysis_every, self.detection_every = analysis_every, detection_every
        self.name = f"intervals:{analysis_every},{detection_every}"

    def select(
        self, frame: Frame, state: AnalysisState, detectors: tuple[str, ...]
    ) -> tuple[str, ...]:
        chosen: list[str] = []
        if frame.seq % self.analysis_every == 0:
            chosen += [d for d in detectors if d in CHEAP_DETECTORS]
        if frame.seq % self.detection_every == 0:
            chosen += [d for d in detectors if d not in CHEAP_DETECTORS]
        return tuple(chosen)


def skipping_from_config(config: StreamingConfig) -> SkipStrategy:
    """The configured strategy; a spec without arguments takes them from the config."""
    spec = Spec.parse(config.skipping)
    if not spec.args:
        defaults = {
            "every_nth": (config.frame_skip_interval,),
            "target_fps": (config.target_fps,),
            "adaptive": (config.analysis_lag_budget_ms,),
            "intervals": (config.analysis_frame_interval, config.detection_frame_interval),
        }.get(spec.name, ())
        spec = Spec(spec.name, tuple(str(v) for v in defaults))
    return skipping.create(spec)
