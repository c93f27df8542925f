"""The one frame value type: an image that carries its own clock.

A frame stays in the decoder's format — I420 (YUV 4:2:0, planar) — from the source to the
encoder. The BGR image is made lazily, once, for the consumers that ask for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from streamlab.clock import now

if TYPE_CHECKING:
    import av

I420_FORMATS = frozenset({"yuv420p"})
"""Decoder pixel formats whose planes are copied as they are (others go through BGR)."""


@dataclass(frozen=True, slots=True)
class EncodedUnit:
    """One encoded access unit from the camera (for passthrough): Annex B bytes for H.264."""

    data: bytes
    codec: str
    keyframe: bool
    pts: int | None = None
    extradata: bytes | None = None


def bgr_to_i420(image: np.ndarray) -> np.ndarray:
    """BGR ``(h, w, 3)`` → I420 ``(h*3//2, w)`` (BT.601, video range; even sizes only)."""
    height, width = image.shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"I420 needs an even frame size, got {width}x{height}")
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


def i420_to_bgr(yuv: np.ndarray) -> np.ndarray:
    """I420 ``(h*3//2, w)`` → BGR ``(h, w, 3)``."""
    import cv2

    return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)


def decoded_pixels(video: av.VideoFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(bgr, None)`` or ``(None, i420)`` for a decoded frame: yuv420p planes are taken as
    they are (one copy out of the decoder's buffers), other formats are converted to BGR."""
    if video.format.name in I420_FORMATS and not (video.width % 2 or video.height % 2):
        return None, video.to_ndarray()
    return video.to_ndarray(format="bgr24"), None


class Frame:
    """A decoded image plus everything needed to measure it on its way.

    Build it from BGR (``Frame(image, seq, pts, time_base, captured_at)``) or from I420
    (``Frame(None, ..., yuv=planes)`` / ``Frame.from_i420``). ``image`` is the BGR view
    (made on first access and kept), ``i420()`` the planar YUV 4:2:0 array ``(h*3//2, w)``
    (converted once from BGR if the frame was built from BGR) and ``gray()`` the Y plane.
    Treat both as read-only: frames are shared by every sink; draw on a copy
    (``with_image`` / ``with_i420``).

    ``captured_at`` is the wall-clock second the frame was made or received from the
    camera; ``stages`` maps a stage name to the wall-clock second the frame entered
    it; ``analysis`` is the latest analysis result attached to this frame, if any;
    ``packet`` optionally holds the camera's encoded access unit (for passthrough).
    """

    __slots__ = (
        "_base",
        "_draw",
        "_image",
        "_size",
        "_yuv",
        "analysis",
        "captured_at",
        "packet",
        "pts",
        "seq",
        "source_codec",
        "stages",
        "time_base",
    )  # fmt: skip

    def __init__(
        self,
        image: np.ndarray | None,
        seq: int,
        pts: int,
        time_base: Fraction,
        captured_at: float,
        stages: dict[str, float] | None = None,
        analysis: Any = None,
        packet: EncodedUnit | None = None,
        source_codec: str | None = None,
        *,
        yuv: np.ndarray | None = None,
        base: Frame | None = None,
        draw: Callable[[np.ndarray], None] | None = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        if image is None and yuv is None and base is None and size is None:
            raise ValueError("a Frame needs an image (BGR) or yuv (I420)")
        if yuv is not None and (yuv.ndim != 2 or yuv.shape[0] % 3 or yuv.shape[1] % 2):
            raise ValueError(f"yuv must be an I420 array (h*3//2, w), got shape {yuv.shape}")
        self._image = image
        self._yuv = yuv
        self._base = base  # pixels still to be made: base's planes + draw (see with_drawing)
        self._draw = draw
        self._size = size  # (w, h) of a frame that was not decoded (see undecoded)
        self.seq = seq
        self.pts = pts
        self.time_base = time_base
        self.captured_at = captured_at
        self.stages: dict[str, float] = {} if stages is None else stages
        self.analysis = analysis
        self.packet = packet
        self.source_codec = source_codec

    @classmethod
    def from_i420(
        cls, yuv: np.ndarray, seq: int, pts: int, time_base: Fraction, captured_at: float,
        **extra: Any,
    ) -> Frame:  # fmt: skip
        """A frame around I420 planes ``(h*3//2, w)`` (not copied)."""
        return cls(None, seq, pts, time_base, captured_at, yuv=yuv, **extra)

    @classmethod
    def undecoded(
        cls, seq: int, pts: int, time_base: Fraction, captured_at: float, width: int,
        height: int, **extra: Any,
    ) -> Frame:  # fmt: skip
        """A frame the source did not decode because no consumer needed pixels (the
        camera's access unit rides in ``packet``): it has a clock, no pixels."""
        return cls(None, seq, pts, time_base, captured_at, size=(width, height), **extra)

    @property
    def has_pixels(self) -> bool:
        """False for an undecoded frame (asking it for pixels raises ValueError)."""
        return self._size is None

    def _no_pixels(self) -> ValueError:
        return ValueError(f"frame {self.seq} was not decoded: no consumer asked for pixels")

    def __repr__(self) -> str:
        kind = (
            "i420" if self._yuv is not None else "bgr" if self._image is not None
            else "undecoded" if self._size is not None else "lazy"
        )  # fmt: skip
        return f"Frame(seq={self.seq}, {self.width}x{self.height}, {kind}, pts={self.pts})"

    # -- pixels --------------------------------------------------------------------------

    @property
    def image(self) -> np.ndarray:
        """The BGR image ``(h, w, 3)``; converted from I420 on first access, then kept."""
        image = self._image
        if image is None:
            image = self._image = i420_to_bgr(self.i420())
        return image

    @property
    def has_bgr(self) -> bool:
        """Whether the BGR image exists already (asking for it costs nothing then)."""
        return self._image is not None

    @property
    def has_i420(self) -> bool:
        """Whether the I420 planes exist already."""
        return self._yuv is not None

    def i420(self) -> np.ndarray:
        """The I420 planes ``(h*3//2, w)`` uint8: Y rows, then U, then V (quarter size each)."""
        yuv = self._yuv
        if yuv is None:
            base, draw = self._base, self._draw
            if base is not None and draw is not None:
                # Made by whoever asks first (an encoder thread), never by the pipeline.
                # Two threads racing here both draw a full copy; either result is right.
                yuv = base.i420().copy()
                draw(yuv)
                self._yuv, self._base, self._draw = yuv, None, None
                return yuv
            if self._image is None:
                raise self._no_pixels()
            yuv = self._yuv = bgr_to_i420(self._image)
        return yuv

    def gray(self) -> np.ndarray:
        """The luma (Y) plane ``(h, w)`` — a view, free for frames built from I420."""
        if self._image is not None and self._yuv is None and (self.width % 2 or self.height % 2):
            import cv2

            return cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY)  # odd sizes have no I420
        return self.i420()[: self.height]

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of the Y ``(h, w)``, U and V ``(h/2, w/2)`` planes."""
        yuv = self.i420()
        h, w = self.height, self.width
        chroma = yuv[h:].reshape(2, h // 2, w // 2)
        return yuv[:h], chroma[0], chroma[1]

    @property
    def width(self) -> int:
        if self._yuv is not None:
            return int(self._yuv.shape[1])
        if self._image is not None:
            return int(self._image.shape[1])
        if self._size is not None:
            return self._size[0]
        assert self._base is not None
        return self._base.width

    @property
    def height(self) -> int:
        if self._yuv is not None:
            return int(self._yuv.shape[0]) * 2 // 3
        if self._image is not None:
            return int(self._image.shape[0])
        if self._size is not None:
            return self._size[1]
        assert self._base is not None
        return self._base.height

    # -- clock ---------------------------------------------------------------------------

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

    # -- conversions ---------------------------------------------------------------------

    def to_av(self) -> av.VideoFrame:
        """Convert to a yuv420p ``av.VideoFrame`` (only at the WebRTC edge), keeping pts and
        time base; no BGR round trip for frames that are I420 already."""
        import av

        if self._image is not None and self._yuv is None and (self.width % 2 or self.height % 2):
            video = av.VideoFrame.from_ndarray(self.image, format="bgr24")
        else:
            video = av.VideoFrame.from_ndarray(self.i420(), format="yuv420p")
        video.pts = self.pts
        video.time_base = self.time_base
        return video

    @classmethod
    def from_av(cls, video: av.VideoFrame, *, seq: int, captured_at: float | None = None) -> Frame:
        """Build a frame from a decoded ``av.VideoFrame`` — its yuv420p planes as they are
        (one copy out of the decoder's buffers), other formats through BGR."""
        time_base = video.time_base if video.time_base is not None else Fraction(1, 90000)
        pts = video.pts if video.pts is not None else 0
        at = now() if captured_at is None else captured_at
        image, yuv = decoded_pixels(video)
        return cls(image, seq, int(pts), Fraction(time_base), at, yuv=yuv)

    def with_image(self, image: np.ndarray) -> Frame:
        """A copy of this frame's timing and analysis around another BGR image."""
        return Frame(
            image, self.seq, self.pts, self.time_base, self.captured_at, dict(self.stages),
            self.analysis, self.packet, self.source_codec,
        )  # fmt: skip

    def with_drawing(self, draw: Callable[[np.ndarray], None]) -> Frame:
        """A copy of this frame whose pixels are this frame's I420 planes, copied, with
        ``draw(planes)`` applied in place — lazily, by the first consumer that asks for
        pixels (``i420()``, ``gray()`` or ``image``), in its own thread. This frame stays
        untouched; making the copy costs nothing until then."""
        return Frame(
            None, self.seq, self.pts, self.time_base, self.captured_at, dict(self.stages),
            self.analysis, self.packet, self.source_codec, base=self, draw=draw,
        )  # fmt: skip

    def with_i420(self, yuv: np.ndarray) -> Frame:
        """A copy of this frame's timing and analysis around other I420 planes."""
        return Frame(
            None, self.seq, self.pts, self.time_base, self.captured_at, dict(self.stages),
            self.analysis, self.packet, self.source_codec, yuv=yuv,
        )  # fmt: skip
