"""Quality strategies: which rung of the ladder each viewer gets.

The ladder is made for the source: the top rung ``source`` is the camera's own size and
frame rate (no resize), then standard boxes strictly smaller than the source (aspect ratio
kept), then a low-frame-rate bottom rung. Each viewer has its own strategy instance, asked
``decide(ladder, current, load) -> rung index`` as frames go out; viewers on the same rung
share one encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from streamlab.errors import ConfigError
from streamlab.registry import Registry

BITS_PER_PIXEL = 0.08  # per frame, realtime VP8/H.264 at an acceptable quality
MIN_BITRATE = 60_000
BOXES: tuple[tuple[str, int, int], ...] = (
    ("1280x720", 1280, 720),
    ("960x540", 960, 540),
    ("640x360", 640, 360),
    ("480x270", 480, 270),
    ("320x180", 320, 180),
)
LOW_FPS_RUNG = "320x180@15"
ALIASES = {"720p": "1280x720", "540p": "960x540", "360p": "640x360", "270p": "480x270",
           "180p": "320x180"}  # fmt: skip
LEVEL_NAMES = ("source", *(name for name, _, _ in BOXES), LOW_FPS_RUNG)


@dataclass(frozen=True, slots=True)
class Level:
    """One rung of the ladder: the encoded size, frame rate and target bitrate."""

    name: str
    width: int
    height: int
    fps: int
    bitrate: int  # bits per second


def fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest even size within the box with the source's aspect ratio (no upscaling)."""
    scale = min(box_w / width, box_h / height, 1.0)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def bitrate_for(width: int, height: int, fps: float) -> int:
    """Target bitrate of a rung."""
    return max(MIN_BITRATE, int(width * height * fps * BITS_PER_PIXEL))


def ladder_for(width: int, height: int, fps: float = 30.0) -> tuple[Level, ...]:
    """The ladder for a ``width`` x ``height`` source at ``fps``: ``source`` first."""
    fps_i = max(1, round(fps))
    source_size = (width // 2 * 2, height // 2 * 2)
    rungs = [Level("source", *source_size, fps_i, bitrate_for(*source_size, fps_i))]
    seen = {source_size}
    for name, box_w, box_h in BOXES:
        size = fit(width, height, box_w, box_h)
        if size in seen or size[0] * size[1] >= source_size[0] * source_size[1]:
            continue
        seen.add(size)
        rungs.append(Level(name, *size, fps_i, bitrate_for(*size, fps_i)))
    low = rungs[-1]
    if fps_i > 15:
        rungs.append(Level(LOW_FPS_RUNG, low.width, low.height, 15,
                           bitrate_for(low.width, low.height, 15)))  # fmt: skip
    return tuple(rungs)


# The ladder of a 1280x720@30 source, for documentation and defaults.
LADDER: tuple[Level, ...] = ladder_for(1280, 720, 30)


def level_name(name: str) -> str:
    """The canonical name of a rung (``source``, ``640x360``, ``360p`` ...)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in LEVEL_NAMES:
        raise ConfigError(f"unknown quality level {name!r}; choose from: {', '.join(LEVEL_NAMES)}")
    return key


def index_of(ladder: Sequence[Level], name: str) -> int:
    """The rung called ``name``; for a box, the largest rung that fits in it."""
    key = level_name(name)
    if key == "source":
        return 0
    for index, rung in enumerate(ladder):
        if rung.name == key:
            return index
    if key == LOW_FPS_RUNG:
        return len(ladder) - 1
    box_w, box_h = next((w, h) for n, w, h in BOXES if n == key)
    for index, rung in enumerate(ladder):
        if rung.width <= box_w and rung.height <= box_h:
            return index
    return len(ladder) - 1


@dataclass(frozen=True, slots=True)
class Load:
    """What a quality strategy sees for one viewer when it decides."""

    encode_s: float = 0.0
    budget_s: float = 1 / 30
    bandwidth_bps: int | None = None
    loss: float = 0.0
    at: float = 0.0
    overused: bool = False
    probed: bool = False
    """The delivery probes this viewer's link for spare capacity (padding): a strategy need
    not try a rung that does not fit to find out."""


class QualityStrategy(Protocol):
    name: str

    def decide(self, ladder: Sequence[Level], current: int | None, load: Load) -> int: ...


quality: Registry[QualityStrategy] = Registry("quality")


@quality.register("fixed")
class Fixed:
    """Always the rung LEVEL: ``source`` (no resize) or a box such as 640x360 / 360p."""

    def __init__(self, level: str = "source") -> None:
        self.level = level_name(level)
        self.name = f"fixed:{self.level}"

    def decide(self, ladder: Sequence[Level], current: int | None, load: Load) -> int:
        return index_of(ladder, self.level)


@quality.register("aimd")
class Aimd:
    """Step down when the rung's own encode time overruns the frame budget for a few frames
    in a row; step back up after a long calm run (START is the first rung)."""

    OVERRUN_FRAMES = 5
    CALM_FRAMES = 90

    def __init__(self, start: str = "source") -> None:
        self.start = level_name(start)
        self.name = "aimd"
        self._over = 0
        self._calm = 0

    def decide(self, ladder: Sequence[Level], current: int | None, load: Load) -> int:
        if current is None:
            return index_of(ladder, self.start)
        if load.encode_s > load.budget_s:
            self._over += 1
            self._calm = 0
            if self._over >= self.OVERRUN_FRAMES:
                self._over = 0
                return min(current + 1, len(ladder) - 1)
        elif load.encode_s < 0.5 * load.budget_s:
            self._over = 0
            self._calm += 1
            if self._calm >= self.CALM_FRAMES:
                self._calm = 0
                return max(current - 1, 0)
        else:
            self._over = self._calm = 0
        return current


@quality.register("bandwidth")
class Bandwidth:
    """The highest rung the viewer's own estimate affords (REMB, loss, NACKs from its RTCP,
    probes of its link).

    Starts on the rung the start estimate affords (``bandwidth:START`` forces a rung);
    steps down at once to the rung that fits (with 15 % headroom). Where the delivery probes
    the link (padding on RTX), it steps up when a probe raised the estimate; elsewhere it
    tries one rung up after ``up_wait`` seconds without loss or overuse, and doubles that
    wait (up to 30 s) each time a try fails within 5 s.
    """

    HEADROOM = 0.85  # the rung's encoder may overshoot its target a little on busy scenes
    FIRST_UP_WAIT_S = 3.0
    MAX_UP_WAIT_S = 30.0

    def __init__(self, start: str = "") -> None:
        self.start = level_name(start) if start else ""
        self.name = "bandwidth"
        self.up_wait_s = self.FIRST_UP_WAIT_S
        self._switched_at = float("-inf")
        self._probed_at = float("-inf")

    def decide(self, ladder: Sequence[Level], current: int | None, load: Load) -> int:
        if current is None:
            self._switched_at = load.at
            if self.start or load.bandwidth_bps is None:
                return index_of(ladder, self.start or "source")
            return self.fitting(ladder, load.bandwidth_bps)
        if load.bandwidth_bps is None:
            return current
        fits = self.fitting(ladder, load.bandwidth_bps)
        if fits > current:
            if load.at - self._probed_at < 5.0:
                self.up_wait_s = min(self.up_wait_s * 2, self.MAX_UP_WAIT_S)
            self._switched_at = load.at
            return fits
        calm = load.loss <= 0.02 and not load.overused
        if fits < current and calm and load.probed:
            self._switched_at = load.at  # probes of the link back the estimate
            return fits
        waited = load.at - self._switched_at >= self.up_wait_s
        if fits < current and calm and waited:
            self._switched_at = self._probed_at = load.at
            return current - 1
        return current

    @classmethod
    def fitting(cls, ladder: Sequence[Level], bandwidth_bps: float) -> int:
        """The highest rung whose bitrate fits ``bandwidth_bps`` with the headroom."""
        budget = bandwidth_bps * cls.HEADROOM
        return next((i for i, r in enumerate(ladder) if r.bitrate <= budget), len(ladder) - 1)
