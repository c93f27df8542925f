"""The overlay draws into I420 planes, lazily, and never over the frame code."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

import streamlab as sl
from streamlab import framecode
from streamlab.analysis import overlay
from streamlab.detection import AnalysisResult
from streamlab.frame import bgr_to_i420

BASE_MS = 1_795_000_000_000


def coded_frame() -> sl.Frame:
    yuv = bgr_to_i420(np.full((480, 640, 3), 90, np.uint8))
    framecode.burn_i420(yuv, 42, BASE_MS)
    return sl.Frame.from_i420(yuv, 42, 0, Fraction(1, 30), 0.0)


def result(*detections: sl.Detection) -> AnalysisResult:
    return AnalysisResult(1, 0.0, 0.0, detections, {}, 640, 480)


def test_boxes_go_into_luma_and_chroma_with_the_label_colour() -> None:
    frame = coded_frame()
    person = sl.Detection("person", 300, 200, 100, 150)
    drawn = frame.with_drawing(overlay.drawing(result(person)))
    assert not drawn.has_i420  # nothing made yet
    y, u, v = drawn.planes()
    want = overlay.yuv_colour(overlay.COLOURS["person"])
    assert (y[200, 350], u[100, 175], v[100, 175]) == want
    assert y[275, 350] == frame.gray()[275, 350]  # inside the box: untouched
    b, g, r = (int(c) for c in drawn.image[200, 350])
    assert g > 200 and b < 60 and r < 60  # green, as the BGR overlay draws it
    assert not np.array_equal(frame.i420(), drawn.i420())  # the source frame is untouched
    assert frame.gray()[200, 350] != want[0]


def test_a_box_over_the_frame_code_leaves_the_code_readable() -> None:
    frame = coded_frame()
    over = sl.Detection("motion", 0, 0, 400, 300)
    drawn = frame.with_drawing(overlay.drawing(result(over)))
    assert framecode.read(drawn.gray(), now=BASE_MS).seq == 42
    assert framecode.read(drawn.image, now=BASE_MS).seq == 42
    assert drawn.gray()[299, 200] != frame.gray()[299, 200]  # drawn outside the corner


def test_bgr_overlay_still_draws_on_a_copy() -> None:
    image = np.full((480, 640, 3), 90, np.uint8)
    out = overlay.draw(image, result(sl.Detection("face", 300, 200, 50, 50)))
    assert (image == 90).all() and not (out == 90).all()
