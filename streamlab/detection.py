"""Detections and analysis results: what analysis attaches to frames and sends to viewers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected (or ground-truth) object: a label and a pixel box ``x, y, w, h``."""

    label: str
    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def iou(self, other: Detection) -> float:
        """Intersection over union of the two boxes (0 when they do not touch)."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """The outcome of analysing one frame (``seq``), attached to later frames as they pass."""

    seq: int
    captured_at: float
    finished_at: float
    detections: tuple[Detection, ...] = ()
    detector_s: dict[str, float] = field(default_factory=dict)
    width: int = 0
    height: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "captured_at": self.captured_at,
            "finished_at": self.finished_at,
            "width": self.width,
            "height": self.height,
            "detector_ms": {k: round(v * 1000, 3) for k, v in self.detector_s.items()},
            "detections": [d.to_dict() for d in self.detections],
        }
