"""Draw detections onto an outgoing frame (on a copy, outside the frame-code region)."""

from __future__ import annotations

import cv2
import numpy as np

from streamlab import framecode
from streamlab.detection import AnalysisResult

COLOURS = {"motion": (0, 200, 255), "person": (0, 255, 0), "face": (255, 128, 0)}


def draw(image: np.ndarray, result: AnalysisResult) -> np.ndarray:
    """A copy of ``image`` with ``result``'s boxes and labels; the frame code stays intact."""
    out = image.copy()
    _, _, code_w, code_h = framecode.region(image.shape[1])
    for d in result.detections:
        colour = COLOURS.get(d.label, (255, 0, 255))
        cv2.rectangle(out, (d.x, d.y), (d.x + d.w - 1, d.y + d.h - 1), colour, 2)
        cv2.putText(out, d.label, (d.x + 2, max(12, d.y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    colour, 1, cv2.LINE_AA)  # fmt: skip
    out[:code_h, :code_w] = image[:code_h, :code_w]
    return out
