"""``synthetic://`` — deterministic moving objects with ground truth and the frame code burned in.

``synthetic://?size=640x480&fps=30&objects=3&seed=0&frames=0&realtime=1``: ``frames=0`` is
endless; ``realtime=0`` renders as fast as the consumer allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from streamlab import framecode
from streamlab.clock import now
from streamlab.detection import Detection
from streamlab.errors import ConfigError
from streamlab.events import EventBus
from streamlab.frame import Frame, bgr_to_i420
from streamlab.sources.base import Source

COLOURS = [(40, 40, 220), (40, 200, 40), (220, 120, 30), (0, 200, 230), (200, 40, 200)]


@dataclass(frozen=True, slots=True)
class _Mover:
    w: int
    h: int
    x0: float
    y0: float
    vx: float
    vy: float
    colour: tuple[int, int, int]
    ellipse: bool
    lane: tuple[float, float]


class SyntheticScene:
    """A static textured background with ``objects`` solid shapes, each bouncing in its own
    horizontal lane (so ground-truth boxes never overlap).

    ``render(seq)`` is a pure function of ``seq`` (and the seed): the same frame and the
    same ground-truth boxes every time. Objects stay clear of the frame-code region.
    """

    def __init__(self, width: int, height: int, *, objects: int = 3, seed: int = 0) -> None:
        if not (framecode.MIN_WIDTH <= width <= 3840 and 240 <= height <= 2160):
            raise ConfigError(f"size must be 320x240 to 3840x2160, got {width}x{height}")
        if not 0 <= objects <= len(COLOURS):
            raise ConfigError(f"objects must be between 0 and {len(COLOURS)}, got {objects}")
        self.width, self.height, self.objects, self.seed = width, height, objects, seed
        rng = np.random.default_rng(seed)
        self.background = self._background(rng)
        code_h = framecode.region(width)[3]
        self._top = code_h + 4
        self._movers = [self._mover(rng, i) for i in range(objects)]

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        base = 90 + 40 * np.sin(xs / 37.0) * np.cos(ys / 53.0)
        noise = rng.normal(0, 6, (self.height, self.width)).astype(np.float32)
        grey = np.clip(base + noise, 0, 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)

    def _mover(self, rng: np.random.Generator, index: int) -> _Mover:
        lane_h = (self.height - self._top) / max(self.objects, 1)
        lane_top = self._top + index * lane_h
        w = int(self.width * rng.uniform(0.08, 0.16))
        h = min(int(self.height * rng.uniform(0.12, 0.22)), int(lane_h * 0.8))
        speed = self.width * rng.uniform(0.004, 0.010)
        angle = rng.uniform(-0.4, 0.4) + (math.pi if rng.uniform() < 0.5 else 0.0)
        return _Mover(
            w,
            h,
            x0=float(rng.uniform(0, self.width - w)),
            y0=float(rng.uniform(lane_top, lane_top + lane_h - h)),
            vx=speed * math.cos(angle) or 1.0,
            vy=speed * math.sin(angle) or 1.0,
            colour=COLOURS[index % len(COLOURS)],
            ellipse=index % 2 == 1,
            lane=(lane_top, lane_top + lane_h),
        )

    def boxes(self, seq: int) -> list[Detection]:
        """Ground truth for frame ``seq``: one box per object, label ``object``."""
        out = []
        for m in self._movers:
            x = _bounce(m.x0 + m.vx * seq, 0, self.width - m.w)
            y = _bounce(m.y0 + m.vy * seq, m.lane[0], m.lane[1] - m.h)
            out.append(Detection("object", int(x), int(y), m.w, m.h))
        return out

    def render(
        self, seq: int, *, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[Detection]]:
        """The image for ``seq`` (no frame code) and its ground-truth boxes."""
        image = np.empty_like(self.background) if out is None else out
        np.copyto(image, self.background)
        boxes = self.boxes(seq)
        for m, box in zip(self._movers, boxes, strict=True):
            if m.ellipse:
                centre = (box.x + box.w // 2, box.y + box.h // 2)
                cv2.ellipse(image, centre, (box.w // 2, box.h // 2), 0, 0, 360, m.colour, -1)
            else:
                cv2.rectangle(
                    image, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), m.colour, -1
                )
        return image, boxes


def _bounce(position: float, low: float, high: float) -> float:
    span = high - low
    if span <= 0:
        return low
    phase = (position - low) % (2 * span)
    return low + (phase if phase <= span else 2 * span - phase)


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    width: int = 640
    height: int = 480
    fps: float = 30.0
    objects: int = 3
    seed: int = 0
    frames: int = 0
    realtime: bool = True

    @classmethod
    def from_url(cls, url: str) -> SyntheticParams:
        parts = urlsplit(url)
        if parts.scheme != "synthetic":
            raise ConfigError(f"not a synthetic:// URL: {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        known = {"size", "fps", "objects", "seed", "frames", "realtime"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise ConfigError(f"synthetic:// has no parameter {unknown[0]!r}; use {sorted(known)}")
        width, height = parse_size(query.get("size", "640x480"))
        fps = _number("fps", query.get("fps", "30"), float, 1, 120)
        return cls(
            width,
            height,
            fps,
            objects=int(_number("objects", query.get("objects", "3"), int, 0, len(COLOURS))),
            seed=int(_number("seed", query.get("seed", "0"), int, 0, 2**31)),
            frames=int(_number("frames", query.get("frames", "0"), int, 0, 10**9)),
            realtime=query.get("realtime", "1").lower() not in ("0", "false", "no"),
        )


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` → ``(640, 480)``; ConfigError naming the value otherwise."""
    try:
        w, h = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"size must look like 640x480, got {text!r}") from None
    return w, h


def _number(
    name: str, text: str, kind: type[int] | type[float], low: float, high: float
) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"synthetic:// {name} must be a number, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"synthetic:// {name} must be between {low} and {high}, got {text!r}")
    return value


class SyntheticSource(Source):
    """Renders ``SyntheticScene`` frames with the frame code, paced by absolute deadlines."""

    scheme = "synthetic"

    def __init__(
        self, url: str = "synthetic://", *, bus: EventBus | None = None, name: str | None = None
    ) -> None:
        self.params = SyntheticParams.from_url(url)
        self.url = url
        super().__init__(name or url, bus=bus)
        p = self.params
        if p.width % 2 or p.height % 2:
            raise ConfigError(f"synthetic:// size must be even (I420), got {p.width}x{p.height}")
        self.scene = SyntheticScene(p.width, p.height, objects=p.objects, seed=p.seed)
        self.stats.codec = "raw"
        self.stats.nominal_fps = p.fps
        self.time_base = Fraction(1, 90000)
        self._canvas = np.empty_like(self.scene.background)

    @property
    def display_url(self) -> str:
        return self.url

    def ground_truth(self, seq: int) -> list[Detection]:
        return self.scene.boxes(seq)

    def _run(self) -> None:
        p = self.params
        period = 1.0 / p.fps
        started = now()
        ticks_per_frame = int(90000 / p.fps)
        while not self._stopping.is_set():
            seq = self._next_seq()
            if p.frames and seq >= p.frames:
                break
            if p.realtime:
                delay = started + seq * period - now()
                if delay > 0 and self._stopping.wait(delay):
                    break
            image, _ = self.scene.render(seq, out=self._canvas)
            yuv = bgr_to_i420(image)  # once; the frame travels as I420 like a decoded one
            captured = now()
            framecode.burn_i420(yuv, seq, int(captured * 1000))
            self._publish(
                Frame.from_i420(
                    yuv, seq, seq * ticks_per_frame, self.time_base, captured, source_codec="raw"
                )
            )
