"""What detectors see: the frame's planes at the analysis size, frame code hidden.

Shared by the analysis threads and the analysis worker process: ``analyse(pool, frame, ...)``
builds each kind of input a detector asks for once per frame (``gray`` — the Y plane,
``i420`` — all three planes, ``bgr`` — the full-size BGR image), runs the detectors and
maps their boxes back to frame pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from streamlab import framecode
from streamlab.analysis.detectors import DetectorPool, ImageKind
from streamlab.detection import Detection
from streamlab.frame import Frame


def analysis_shape(width: int, height: int, max_width: int) -> tuple[int, int]:
    """``(w, h)`` of the analysis image: at most ``max_width`` wide, aspect kept, even."""
    if width <= max_width:
        return width, height
    scale = max_width / width
    return max_width - max_width % 2, max(2, round(height * scale / 2) * 2)


@dataclass(slots=True)
class FrameInputs:
    """Lazily built detector inputs for one frame."""

    frame: Frame
    max_width: int
    hide_code: bool
    _made: dict[str, np.ndarray] | None = None

    def size(self) -> tuple[int, int]:
        return analysis_shape(self.frame.width, self.frame.height, self.max_width)

    def scale(self, kind: ImageKind) -> tuple[float, float]:
        """Factors from input pixels back to frame pixels (x, y)."""
        if kind == "bgr":
            return 1.0, 1.0
        w, h = self.size()
        return self.frame.width / w, self.frame.height / h

    def get(self, kind: ImageKind) -> np.ndarray:
        made = self._made if self._made is not None else {}
        self._made = made
        if kind not in made:
            made[kind] = self._make(kind)
        return made[kind]

    def _make(self, kind: ImageKind) -> np.ndarray:
        frame = self.frame
        if kind == "bgr":
            image = frame.image
            if self.hide_code:
                image = image.copy()
                _blank_code(image, frame.width, 1.0)
            return image
        w, h = self.size()
        same = (w, h) == (frame.width, frame.height)
        if kind == "gray":
            gray = frame.gray()
            out = gray.copy() if same else cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
        else:
            yuv = frame.i420()
            if same:
                out = yuv.copy()
            else:
                out = np.empty((h * 3 // 2, w), np.uint8)
                y, u, v = frame.planes()
                cv2.resize(y, (w, h), dst=out[:h], interpolation=cv2.INTER_AREA)
                chroma = out[h:].reshape(2, h // 2, w // 2)
                cv2.resize(u, (w // 2, h // 2), dst=chroma[0], interpolation=cv2.INTER_AREA)
                cv2.resize(v, (w // 2, h // 2), dst=chroma[1], interpolation=cv2.INTER_AREA)
        if self.hide_code:
            _blank_code(out[:h], frame.width, w / frame.width)
        return out


def _blank_code(image: np.ndarray, frame_width: int, scale: float) -> None:
    """Black out the frame-code corner (it changes every frame by design: not motion)."""
    _, _, code_w, code_h = framecode.region(frame_width)
    image[: int(np.ceil(code_h * scale)), : int(np.ceil(code_w * scale))] = 0


def analyse(
    pool: DetectorPool, frame: Frame, names: tuple[str, ...], *, max_width: int, hide_code: bool
) -> tuple[list[Detection], dict[str, float]]:
    """Run ``names`` on ``frame``; detections in frame pixels and seconds per detector."""
    inputs = FrameInputs(frame, max_width, hide_code)
    found: list[Detection] = []
    timings: dict[str, float] = {}
    for name in names:
        started = time.perf_counter()
        kind = pool.kind(name)
        detections = pool.run(name, inputs.get(kind))
        sx, sy = inputs.scale(kind)
        if (sx, sy) != (1.0, 1.0):
            detections = [_mapped(d, sx, sy, frame.width, frame.height) for d in detections]
        found += detections
        timings[name] = time.perf_counter() - started
    return found, timings


def _mapped(d: Detection, sx: float, sy: float, width: int, height: int) -> Detection:
    x, y = min(width - 1, round(d.x * sx)), min(height - 1, round(d.y * sy))
    w, h = min(width - x, round(d.w * sx)), min(height - y, round(d.h * sy))
    return Detection(d.label, x, y, max(1, w), max(1, h), d.score)


def has_frame_code(frame: Frame) -> bool:
    """Whether ``frame`` carries a readable frame code (then analysis hides it)."""
    try:
        return framecode.try_read(frame.gray()) is not None
    except ValueError:
        return False
