"""Frame code: survives real VP8 and H.264 compression; misreads are detected."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

import streamlab as sl
from streamlab import framecode
from streamlab.sources.synthetic import SyntheticScene

SIZES = [(320, 240), (640, 480), (1280, 720)]
BASE_MS = 1_795_000_000_000


def round_trip(codec: str, width: int, height: int, frames: int = 20) -> list[np.ndarray]:
    scene = SyntheticScene(width, height, objects=4, seed=3)
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.bit_rate = 300_000 if width <= 320 else 1_000_000
    if codec == "libx264":
        encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
    else:
        encoder.options = {"deadline": "realtime", "cpu-used": "8"}
    decoder = av.CodecContext.create("vp8" if codec == "libvpx" else "h264", "r")
    out: list[np.ndarray] = []
    for seq in range(frames):
        image, _ = scene.render(seq)
        framecode.burn(image, seq, BASE_MS + seq * 33)
        video = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        video.pts = seq
        for packet in encoder.encode(video):
            out += [d.to_ndarray(format="bgr24") for d in decoder.decode(packet)]
    for packet in encoder.encode(None):
        out += [d.to_ndarray(format="bgr24") for d in decoder.decode(packet)]
    return out


@pytest.mark.parametrize("codec", ["libvpx", "libx264"])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_every_frame_reads_back_after_compression(codec: str, width: int, height: int) -> None:
    decoded = round_trip(codec, width, height)
    assert len(decoded) == 20
    codes = [framecode.read(image, now=BASE_MS) for image in decoded]
    assert [c.seq for c in codes] == list(range(20))
    assert [c.captured_ms for c in codes] == [BASE_MS + s * 33 for s in range(20)]


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_in_memory_round_trip_and_region(width: int, height: int) -> None:
    image = np.full((height, width, 3), 127, np.uint8)
    framecode.burn(image, 2**24 + 5, BASE_MS)
    assert framecode.read(image, now=BASE_MS) == framecode.FrameCode(5, BASE_MS)
    x, y, w, h = framecode.region(width)
    outside = image.copy()
    outside[y : y + h, x : x + w] = 127
    assert (outside == 127).all()


def test_blank_and_noise_images_raise() -> None:
    with pytest.raises(sl.FrameCodeError):
        framecode.read(np.zeros((480, 640, 3), np.uint8))
    rng = np.random.default_rng(1)
    with pytest.raises(sl.FrameCodeError):
        framecode.read(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    assert framecode.try_read(np.full((480, 640, 3), 255, np.uint8)) is None


def test_a_flipped_cell_is_detected_never_misread() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    framecode.burn(image, 77, BASE_MS)
    cell = framecode.cell_size(640)
    for row in range(framecode.ROWS):
        for col in range(framecode.COLS):
            damaged = image.copy()
            y, x = cell + row * cell, cell + col * cell
            damaged[y : y + cell, x : x + cell] = 255 - damaged[y : y + cell, x : x + cell]
            with pytest.raises(sl.FrameCodeError, match="checksum"):
                framecode.read(damaged, now=BASE_MS)


def test_too_small_frames_are_rejected() -> None:
    with pytest.raises(sl.FrameCodeError, match="too small"):
        framecode.burn(np.zeros((100, 160, 3), np.uint8), 1, BASE_MS)


def test_ms_unwraps_across_the_32_bit_boundary() -> None:
    wrap = 1 << 32
    assert framecode.unwrap_ms(5, 3 * wrap - 10) == 3 * wrap + 5
    assert framecode.unwrap_ms(wrap - 5, 3 * wrap + 10) == 3 * wrap - 5
    assert framecode.unwrap_ms(1234, 7 * wrap + 1200) == 7 * wrap + 1234


def test_crc_matches_the_published_check_value() -> None:
    assert framecode.crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value
