"""One encoder per stream: frames are scaled to the quality level and encoded once."""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np

from streamlab.strategies.quality import Level

TIME_BASE = Fraction(1, 90000)


def fit(width: int, height: int, level: Level) -> tuple[int, int]:
    """The largest even size within ``level`` with the source's aspect ratio (no upscaling)."""
    scale = min(level.width / width, level.height / height, 1.0)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


class SharedEncoder:
    """Encodes BGR frames to VP8 (libvpx) or H.264 (libx264) packets for every viewer.

    Not thread-safe: one caller at a time (the fan-out's single encoder thread).
    """

    def __init__(self, encoder: str, *, threads: int = 1) -> None:
        self.encoder = encoder
        self.threads = threads
        self.level: Level | None = None
        self.size: tuple[int, int] | None = None
        self._context: Any = None
        self._scaled: np.ndarray | None = None
        self.frames = 0
        self.keyframes = 0
        self.last_encode_s = 0.0

    def _open(self, level: Level, size: tuple[int, int]) -> Any:
        context: Any = av.CodecContext.create(self.encoder, "w")
        context.width, context.height = size
        context.pix_fmt = "yuv420p"
        context.time_base = TIME_BASE
        context.framerate = Fraction(level.fps, 1)
        context.bit_rate = level.bitrate
        context.thread_count = self.threads  # libvpx with 2 threads stalls ~100 ms under load
        if self.encoder == "libx264":
            context.profile = "Baseline"
            context.options = {"preset": "ultrafast", "tune": "zerolatency", "level": "31",
                               "g": "3000", "bframes": "0"}  # fmt: skip
        else:
            context.gop_size = 3000
            context.qmin, context.qmax = 2, 56
            context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                               "error-resilient": "1", "static-thresh": "1",
                               "undershoot-pct": "95", "overshoot-pct": "15"}  # fmt: skip
        return context

    def encode(self, image: np.ndarray, pts: int, level: Level, keyframe: bool) -> list[av.Packet]:
        """Encode one frame at ``level``; ``keyframe`` forces an intra frame."""
        started = time.perf_counter()
        width, height = fit(image.shape[1], image.shape[0], level)
        if self._context is None or level != self.level or self.size != (width, height):
            self._context = self._open(level, (width, height))
            self.level, self.size = level, (width, height)
            keyframe = True
        if image.shape[1] != width or image.shape[0] != height:
            if self._scaled is None or self._scaled.shape[:2] != (height, width):
                self._scaled = np.empty((height, width, 3), np.uint8)
            cv2.resize(image, (width, height), dst=self._scaled, interpolation=cv2.INTER_AREA)
            image = self._scaled
        frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        frame.pts = pts
        frame.time_base = TIME_BASE
        frame.pict_type = (
            av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        )
        packets = list(self._context.encode(frame))
        for packet in packets:
            packet.pts, packet.time_base = pts, TIME_BASE
        self.frames += 1
        self.keyframes += int(keyframe)
        self.last_encode_s = time.perf_counter() - started
        return packets
