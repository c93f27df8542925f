"""Real encoder output to test payload formats with: a textured scene with a moving square,
encoded through the delivery's ``SharedEncoder`` (so with its real-time settings)."""

from __future__ import annotations

from collections.abc import Iterable

import av
import numpy as np

from streamlab.strategies.quality import Level
from streamlab.webrtc.encoder import SharedEncoder

SIZE = (640, 480)
BITRATE = 737_280  # the ladder's bitrate for 640x480@30


class Picture:
    """A frame as the delivery hands it to ``SharedEncoder``: it has its I420 planes."""

    def __init__(self, i420: np.ndarray) -> None:
        self._i420 = i420

    def i420(self) -> np.ndarray:
        """The picture as an I420 planar array ``(h * 3 // 2, w)``."""
        return self._i420


def scene(index: int, size: tuple[int, int] = SIZE) -> Picture:
    """Picture ``index``: noise-like texture panning right (keyframes span many packets) and
    a white square moving across."""
    width, height = size
    texture = np.random.default_rng(7).integers(0, 256, (height, width), dtype=np.uint8)
    luma = np.roll(texture, index * 3, axis=1)
    x = (index * 9) % (width - 64)
    luma[height // 4 : height // 4 + 64, x : x + 64] = 255
    chroma = np.full((height // 2, width), 128, np.uint8)
    return Picture(np.vstack([luma, chroma]))


def encode(
    encoder: str, frames: int = 60, keyframes: Iterable[int] = (0,), size: tuple[int, int] = SIZE
) -> list[av.Packet]:
    """``frames`` pictures of the scene encoded by ``encoder`` (a PyAV name) at 30 fps, pts in
    90 kHz; keyframes forced at the ``keyframes`` indices (as on a viewer's PLI)."""
    shared = SharedEncoder(encoder)
    level = Level("source", *size, 30, BITRATE)
    forced = set(keyframes)
    packets: list[av.Packet] = []
    for index in range(frames):
        packets += shared.encode(scene(index, size), index * 3000, level, index in forced)
    return packets
