"""The one frame value type: an image that carries its own clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from streamlab.clock import now

if TYPE_CHECKING:
    import av


@dataclass(frozen=True, slots=True)
class EncodedUnit:
    """One encoded access unit from the camera (for passthrough): Annex B bytes for H.264."""

    data: bytes
    codec: str
    keyframe: bool
    pts: int | None = None
    extradata: bytes | None = None


@dataclass(slots=True)
class Frame:
    """A decoded BGR image plus everything needed to measure it on its way.

    ``captured_at`` is the wall-clock second the frame was made or received from the
    camera; ``stages`` maps a stage name to the wall-clock second the frame entered
    it; ``analysis`` is the latest analysis result attached to this frame, if any;
    ``packet`` optionally holds the camera's encoded access unit (for passthrough).
    """

    image: np.ndarray
    seq: int
    pts: int
    time_base: Fraction
    captured_at: float
    stages: dict[str, float] = field(default_factory=dict)
    analysis: Any = None
    packet: EncodedUnit | None = None
    source_codec: str | None = None

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def age(self) -> float:
        """Seconds since capture, by the wall clock."""
        return now() - self.captured_at

    def mark(self, stage: str, at: float | None = None) -> None:
        """Record that the frame entered ``stage`` now (or at ``at``)."""
        self.stages[stage] = now() if at is None else at

    def since(self, stage: str) -> float | None:
        """Seconds between capture and entering ``stage``, or None if it never did."""
        at = self.stages.get(stage)
        return None if at is None else at - self.captured_at

    def to_av(self) -> av.VideoFrame:
        """Convert to ``av.VideoFrame`` (only at the WebRTC edge), keeping pts and time base."""
        import av

        video = av.VideoFrame.from_ndarray(self.image, format="bgr24")
        video.pts = self.pts
        video.time_base = self.time_base
        return video

    @classmethod
    def from_av(cls, video: av.VideoFrame, *, seq: int, captured_at: float | None = None) -> Frame:
        """Build a frame from a decoded ``av.VideoFrame``."""
        image = video.to_ndarray(format="bgr24")
        time_base = video.time_base if video.time_base is not None else Fraction(1, 90000)
        pts = video.pts if video.pts is not None else 0
        return cls(
            image=image,
            seq=seq,
            pts=int(pts),
            time_base=Fraction(time_base),
            captured_at=now() if captured_at is None else captured_at,
        )

    def with_image(self, image: np.ndarray) -> Frame:
        """A copy of this frame's timing and analysis around another image."""
        return Frame(
            image=image,
            seq=self.seq,
            pts=self.pts,
            time_base=self.time_base,
            captured_at=self.captured_at,
            stages=dict(self.stages),
            analysis=self.analysis,
            packet=self.packet,
            source_codec=self.source_codec,
        )
