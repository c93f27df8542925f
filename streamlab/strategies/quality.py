"""Quality strategies: output size, frame rate and bitrate for transcoded delivery.

One decision: ``decide(load) -> Level``, called once per encoded frame with the measured
encode time, the frame budget and the viewers' bandwidth estimate (from REMB).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from streamlab.errors import ConfigError
from streamlab.registry import Registry


@dataclass(frozen=True, slots=True)
class Level:
    """One rung of the ladder."""

    name: str
    width: int
    height: int
    fps: int
    bitrate: int  # bits per second


LADDER: tuple[Level, ...] = (
    Level("1280x720", 1280, 720, 30, 2_500_000),
    Level("960x540", 960, 540, 30, 1_500_000),
    Level("640x360", 640, 360, 30, 900_000),
    Level("480x270", 480, 270, 30, 500_000),
    Level("320x180", 320, 180, 30, 250_000),
)
ALIASES = {"720p": "1280x720", "540p": "960x540", "360p": "640x360", "270p": "480x270",
           "180p": "320x180"}  # fmt: skip


def level(name: str) -> Level:
    """A ladder level by name (``640x360`` or ``360p``)."""
    key = ALIASES.get(name.lower(), name.lower())
    for rung in LADDER:
        if rung.name == key:
            return rung
    names = ", ".join(r.name for r in LADDER)
    raise ConfigError(f"unknown quality level {name!r}; choose from: {names}")


@dataclass(frozen=True, slots=True)
class Load:
    """What a quality strategy sees for one frame."""

    encode_s: float
    budget_s: float
    bandwidth_bps: int | None = None
    loss: float = 0.0


class QualityStrategy(Protocol):
    name: str

    def decide(self, load: Load) -> Level: ...


quality: Registry[QualityStrategy] = Registry("quality")


@quality.register("fixed")
class Fixed:
    """Always the same LEVEL (e.g. 640x360 or 360p)."""

    def __init__(self, level_name: str = "640x360") -> None:
        self.level = level(level_name)
        self.name = f"fixed:{self.level.name}"

    def decide(self, load: Load) -> Level:
        return self.level


class _Stepper:
    def __init__(self, start: str) -> None:
        self.index = [r.name for r in LADDER].index(level(start).name)
        self.calm = 0

    @property
    def current(self) -> Level:
        return LADDER[self.index]

    def down(self) -> None:
        self.index = min(self.index + 1, len(LADDER) - 1)
        self.calm = 0

    def up_after(self, frames: int) -> None:
        self.calm += 1
        if self.calm >= frames and self.index > 0:
            self.index -= 1
            self.calm = 0


@quality.register("aimd")
class Aimd(_Stepper):
    """Step down at once when encoding overruns the frame budget; step up after a calm run."""

    def __init__(self, start: str = "640x360") -> None:
        super().__init__(start)
        self.name = "aimd"

    def decide(self, load: Load) -> Level:
        if load.encode_s > load.budget_s:
            self.down()
        elif load.encode_s < 0.5 * load.budget_s:
            self.up_after(90)
        else:
            self.calm = 0
        return self.current


@quality.register("bandwidth")
class Bandwidth(_Stepper):
    """Follow the viewers' bandwidth estimate (REMB) and loss: the largest level that fits."""

    def __init__(self, start: str = "640x360") -> None:
        super().__init__(start)
        self.name = "bandwidth"

    def decide(self, load: Load) -> Level:
        if load.bandwidth_bps is None:
            return self.current
        available = load.bandwidth_bps * (0.7 if load.loss > 0.05 else 0.9)
        fitting = [i for i, r in enumerate(LADDER) if r.bitrate <= available]
        target = fitting[0] if fitting else len(LADDER) - 1
        if target > self.index:
            self.index, self.calm = target, 0
        elif target < self.index:
            self.up_after(30)
        return self.current
