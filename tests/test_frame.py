"""Frames stay I420 end to end; BGR is made lazily, once."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

import streamlab as sl
from streamlab import framecode
from streamlab.frame import bgr_to_i420
from streamlab.sources.synthetic import SyntheticScene

BASE_MS = 1_795_000_000_000


def scene_image(width: int = 640, height: int = 480) -> np.ndarray:
    image, _ = SyntheticScene(width, height, objects=3, seed=2).render(5)
    return image


def test_a_frame_from_i420_makes_bgr_once_on_first_access() -> None:
    yuv = bgr_to_i420(scene_image())
    frame = sl.Frame.from_i420(yuv, 7, 70, Fraction(1, 90000), 1.0)
    assert (frame.width, frame.height) == (640, 480)
    assert not frame.has_bgr
    assert frame.i420() is yuv
    assert np.shares_memory(frame.gray(), yuv) and frame.gray().shape == (480, 640)
    image = frame.image
    assert frame.has_bgr and frame.image is image and image.shape == (480, 640, 3)
    y, u, v = frame.planes()
    assert y.shape == (480, 640) and u.shape == v.shape == (240, 320)


def test_a_frame_from_bgr_converts_to_i420_once_and_round_trips_closely() -> None:
    image = scene_image()
    frame = sl.Frame(image, 1, 1, Fraction(1, 30), 1.0)
    assert frame.image is image and not frame.has_i420
    yuv = frame.i420()
    assert yuv.shape == (720, 640) and frame.i420() is yuv
    back = sl.Frame.from_i420(yuv, 1, 1, Fraction(1, 30), 1.0).image
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 4


def test_odd_sizes_keep_working_through_bgr() -> None:
    frame = sl.Frame(np.zeros((241, 321, 3), np.uint8), 0, 0, Fraction(1, 30), 0.0)
    assert frame.gray().shape == (241, 321)
    assert frame.to_av().width == 321
    with pytest.raises(ValueError, match="even"):
        frame.i420()


def test_bad_planes_are_refused_with_one_line() -> None:
    with pytest.raises(ValueError, match="I420"):
        sl.Frame.from_i420(np.zeros((100, 640), np.uint8), 0, 0, Fraction(1, 30), 0.0)
    with pytest.raises(ValueError, match="needs an image"):
        sl.Frame(None, 0, 0, Fraction(1, 30), 0.0)


def test_av_round_trip_keeps_planes_pts_and_time_base() -> None:
    yuv = bgr_to_i420(scene_image())
    frame = sl.Frame.from_i420(yuv, 3, 3000, Fraction(1, 90000), 1.0)
    video = frame.to_av()
    assert video.format.name == "yuv420p"
    assert (video.pts, video.time_base) == (3000, frame.time_base)
    again = sl.Frame.from_av(video, seq=3)
    assert again.has_i420 and not again.has_bgr
    assert np.array_equal(again.i420(), yuv) and again.pts == 3000
    bgr_video = av.VideoFrame.from_ndarray(scene_image(), format="bgr24")
    assert sl.Frame.from_av(bgr_video, seq=0).has_bgr  # other formats go through BGR


def test_with_image_and_with_i420_keep_timing_and_analysis() -> None:
    frame = sl.Frame.from_i420(bgr_to_i420(scene_image()), 4, 4, Fraction(1, 30), 2.0)
    frame.mark("dequeued", 2.5)
    frame.analysis = "result"
    for copy in (frame.with_image(frame.image.copy()), frame.with_i420(frame.i420().copy())):
        assert (copy.seq, copy.captured_at, copy.analysis) == (4, 2.0, "result")
        assert copy.stages == {"dequeued": 2.5} and copy.stages is not frame.stages


@pytest.mark.parametrize(("width", "height"), [(320, 240), (640, 480), (1280, 720)])
def test_frame_code_burnt_into_i420_reads_from_gray_and_bgr(width: int, height: int) -> None:
    yuv = bgr_to_i420(scene_image(width, height))
    framecode.burn_i420(yuv, 99, BASE_MS)
    frame = sl.Frame.from_i420(yuv, 99, 0, Fraction(1, 30), 0.0)
    assert framecode.read(frame.gray(), now=BASE_MS) == framecode.FrameCode(99, BASE_MS)
    assert framecode.read(frame.image, now=BASE_MS) == framecode.FrameCode(99, BASE_MS)


def test_the_synthetic_source_publishes_i420_frames() -> None:
    source = sl.open_source("synthetic://?size=320x240&realtime=0&frames=3")
    with source.subscribe("block:8") as subscription:
        source.start()
        frames = []
        import asyncio

        async def read() -> None:
            async for frame in subscription:
                frames.append(frame)

        asyncio.run(read())
    source.stop()
    assert len(frames) == 3 and all(f.has_i420 and not f.has_bgr for f in frames)
    assert [framecode.read(f.gray()).seq for f in frames] == [0, 1, 2]
    with pytest.raises(sl.ConfigError, match="even"):
        sl.open_source("synthetic://?size=641x480")
