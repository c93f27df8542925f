"""Draw detections onto outgoing frames, outside the frame-code region.

``drawing(result)`` returns a function that draws into I420 planes in place — boxes into Y
and into U/V at half resolution, labels into Y — for ``Frame.with_drawing``: the pipeline
only attaches it; the pixels are made by the first consumer that reads them (an encoder
thread), never on the event loop. ``draw(image, result)`` draws onto a BGR copy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import cv2
import numpy as np

from streamlab import framecode
from streamlab.detection import AnalysisResult

COLOURS = {"motion": (0, 200, 255), "person": (0, 255, 0), "face": (255, 128, 0)}
OTHER = (255, 0, 255)


def draw(image: np.ndarray, result: AnalysisResult) -> np.ndarray:
    """A copy of ``image`` (BGR) with ``result``'s boxes and labels; the frame code intact."""
    out = image.copy()
    _, _, code_w, code_h = framecode.region(image.shape[1])
    for d in result.detections:
        colour = COLOURS.get(d.label, OTHER)
        cv2.rectangle(out, (d.x, d.y), (d.x + d.w - 1, d.y + d.h - 1), colour, 2)
        cv2.putText(out, d.label, (d.x + 2, max(12, d.y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    colour, 1, cv2.LINE_AA)  # fmt: skip
    out[:code_h, :code_w] = image[:code_h, :code_w]
    return out


def yuv_colour(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    """A BGR colour in BT.601 video-range YUV (what the I420 planes hold)."""
    b, g, r = bgr
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return round(y), round(u), round(v)


def draw_i420(yuv: np.ndarray, result: AnalysisResult) -> None:
    """Draw ``result`` into I420 planes ``(h*3//2, w)`` in place; the frame code survives."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    luma = yuv[:height]
    chroma = yuv[height:].reshape(2, height // 2, width // 2)
    _, _, code_w, code_h = framecode.region(width)
    code_w, code_h = min(code_w + code_w % 2, width), min(code_h + code_h % 2, height)
    saved_y = luma[:code_h, :code_w].copy()
    saved_uv = chroma[:, : code_h // 2, : code_w // 2].copy()
    for d in result.detections:
        y, u, v = yuv_colour(COLOURS.get(d.label, OTHER))
        x0, y0, x1, y1 = d.x, d.y, d.x + d.w - 1, d.y + d.h - 1
        cv2.rectangle(luma, (x0, y0), (x1, y1), y, 2)
        cv2.putText(luma, d.label, (x0 + 2, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    y, 1, cv2.LINE_AA)  # fmt: skip
        for plane, value in ((chroma[0], u), (chroma[1], v)):
            cv2.rectangle(plane, (x0 // 2, y0 // 2), (x1 // 2, y1 // 2), value, 1)
    luma[:code_h, :code_w] = saved_y
    chroma[:, : code_h // 2, : code_w // 2] = saved_uv


def drawing(result: AnalysisResult) -> Callable[[np.ndarray], None]:
    """``draw_i420`` bound to ``result``, for ``Frame.with_drawing``."""
    return partial(draw_i420, result=result)
