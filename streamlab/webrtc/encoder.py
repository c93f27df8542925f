"""One encoder for one (codec, rung): frames are scaled to the rung and encoded once.

Frames go in as I420 (the decoder's own format; a BGR frame is converted once). Keyframes
are capped in size (a few frames' worth of bits), so a keyframe does not overflow a slow
viewer's link; the encoder reopens only when the rung's size changes.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np

from streamlab.strategies.quality import Level, fit
from streamlab.webrtc.codecs.av1 import with_sequence_header
from streamlab.webrtc.scheduling import time_sharing

TIME_BASE = Fraction(1, 90000)
KEYFRAME_FRAMES = 4  # a keyframe may take this many frames' worth of bits
SMPTE170M = 6  # FFmpeg's AVCOL_SPC / AVCOL_PRI / AVCOL_TRC value for BT.601 (525 lines)
VIDEO_RANGE = 1  # AVCOL_RANGE_MPEG: Y 16-235
# Measured at 640x480@30, 737 kbit/s, one thread on this project's 2-core machine:
VP9_CPU_USED = 8  # the fastest FFmpeg allows: p50 5.4 / p95 9.0 ms, same PSNR as 6 and 7
# 10, not 11-12: those cost 3-4x less at p95 (7.8 vs 28 ms) but skip changed blocks in 3 of 4
# frames (SVT's low-delay layers), so small details such as frame codes go stale
AV1_PRESET = 10


def i420_of(frame: Any) -> np.ndarray:
    """The frame as an I420 planar array ``(h * 3 // 2, w)``, without a copy when it has one."""
    method = getattr(frame, "i420", None)
    if callable(method):
        return np.asarray(method())
    image = frame.image if hasattr(frame, "image") else frame
    height, width = image.shape[:2]
    if width % 2 or height % 2:
        image = image[: height // 2 * 2, : width // 2 * 2]
    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


def scale_i420(i420: np.ndarray, width: int, height: int, out: np.ndarray | None) -> np.ndarray:
    """Resize an I420 array plane by plane into ``out`` (reused when it has the right shape)."""
    src_h = i420.shape[0] * 2 // 3
    src_w = i420.shape[1]
    if (src_w, src_h) == (width, height):
        return i420
    if out is None or out.shape != (height * 3 // 2, width):
        out = np.empty((height * 3 // 2, width), np.uint8)
    cv2.resize(i420[:src_h], (width, height), dst=out[:height], interpolation=cv2.INTER_AREA)
    chroma_src = i420[src_h:].reshape(2, src_h // 2, src_w // 2)
    chroma_dst = out[height:].reshape(2, height // 2, width // 2)
    for plane in range(2):
        cv2.resize(chroma_src[plane], (width // 2, height // 2), dst=chroma_dst[plane],
                   interpolation=cv2.INTER_AREA)  # fmt: skip
    return out


class SharedEncoder:
    """Encodes frames to VP8 (libvpx), H.264 (libx264), VP9 (libvpx-vp9) or AV1 (libsvtav1)
    packets at one rung for every viewer on it. Not thread-safe: one caller at a time (the
    rung's encoder thread)."""

    def __init__(
        self,
        encoder: str,
        *,
        threads: int = 1,
        vp8_cpu_used: int = 16,
        vp9_cpu_used: int = VP9_CPU_USED,
        av1_preset: int = AV1_PRESET,
    ) -> None:
        self.encoder = encoder
        self.threads = threads
        self.vp8_cpu_used = vp8_cpu_used
        self.vp9_cpu_used = vp9_cpu_used
        self.av1_preset = av1_preset
        self._sequence_header: bytes | None = None  # AV1: repeated on keyframes lacking it
        self.level: Level | None = None
        self.size: tuple[int, int] | None = None
        self._context: Any = None
        self._scaled: np.ndarray | None = None
        self.frames = 0
        self.frames_since_open = 0
        self.keyframes = 0
        self.reopens = 0
        self.last_encode_s = 0.0
        self.bytes = 0

    def _open(self, level: Level, size: tuple[int, int]) -> Any:
        context: Any = av.CodecContext.create(self.encoder, "w")
        context.width, context.height = size
        context.pix_fmt = "yuv420p"
        # what the pictures are (OpenCV's BGR -> I420: BT.601, video range), said in the
        # stream (H.264 VUI, VP9 and AV1 headers): unsaid, Chromium shows H.264 and VP9 by
        # BT.709 and every hue shifts
        context.colorspace = context.color_primaries = context.color_trc = SMPTE170M
        context.color_range = VIDEO_RANGE
        context.time_base = TIME_BASE
        context.framerate = Fraction(level.fps, 1)
        context.bit_rate = level.bitrate
        context.thread_count = self.threads  # libvpx with 2 threads stalls ~100 ms under load
        if self.encoder == "libx264":
            kbps = max(1, level.bitrate // 1000)
            buffer = max(1, kbps * KEYFRAME_FRAMES // level.fps)
            context.profile = "Baseline"
            vbv = f"vbv-maxrate={kbps}:vbv-bufsize={buffer}"
            context.options = {"preset": "ultrafast", "tune": "zerolatency", "level": "31",
                               "g": "3000", "bframes": "0", "x264-params": vbv}  # fmt: skip
        elif self.encoder == "libvpx-vp9":
            self._open_vp9(context, level)
        elif self.encoder == "libsvtav1":
            self._open_av1(context, level)
        else:
            context.gop_size = 3000
            context.qmin, context.qmax = 2, 56
            context.options = {"deadline": "realtime", "cpu-used": str(self.vp8_cpu_used),
                               "lag-in-frames": "0",
                               "error-resilient": "1", "static-thresh": "1",
                               "undershoot-pct": "95", "overshoot-pct": "15",
                               "max-intra-rate": str(KEYFRAME_FRAMES * 100)}  # fmt: skip
        return context

    def _open_vp9(self, context: Any, level: Level) -> None:
        # libwebrtc's real-time VP9: CBR with a 1 s buffer, under/overshoot 50 %, q 2-52,
        # cyclic-refresh AQ; keyframes only when asked for, capped like VP8's.
        rate = str(level.bitrate)
        context.gop_size = 3000
        context.qmin, context.qmax = 2, 52
        context.options = {"deadline": "realtime", "cpu-used": str(self.vp9_cpu_used),
                           "row-mt": "1", "lag-in-frames": "0", "error-resilient": "1",
                           "minrate": rate, "maxrate": rate, "bufsize": rate,
                           "undershoot-pct": "50", "overshoot-pct": "50", "aq-mode": "3",
                           "max-intra-rate": str(KEYFRAME_FRAMES * 100)}  # fmt: skip

    def _open_av1(self, context: Any, level: Level) -> None:
        # SVT-AV1's RTC mode: low-delay prediction (pred-struct=1), CBR (rc=2), no scene-cut
        # keyframes (scd=0), one thread's worth of parallelism (lp); keyframes on request.
        context.gop_size = 3000
        params = (f"rtc=1:pred-struct=1:rc=2:scd=0:preset={self.av1_preset}:lp={self.threads}"
                  f":buf-sz=1000:buf-initial-sz=500:buf-optimal-sz=600"
                  f":undershoot-pct=50:overshoot-pct=50")  # fmt: skip
        context.options = {"svtav1-params": params}

    def _av1_keyframe(self, packet: av.Packet) -> av.Packet:
        """The keyframe with the sequence header it must start with (SVT-AV1 may write it
        only into the first keyframe after opening)."""
        data, header = with_sequence_header(bytes(packet), self._sequence_header)
        self._sequence_header = header
        if len(data) == packet.size:
            return packet
        rebuilt = av.Packet(data)
        rebuilt.is_keyframe = True
        return rebuilt

    def encode(self, frame: Any, pts: int, level: Level, keyframe: bool) -> list[av.Packet]:
        """Encode one frame at ``level``; ``keyframe`` forces an intra frame.

        ``last_encode_s`` times the scaling and encoding of this frame only, never a reopen.
        """
        i420 = i420_of(frame)
        src_w, src_h = i420.shape[1], i420.shape[0] * 2 // 3
        width, height = fit(src_w, src_h, level.width, level.height)
        if self._context is None or level != self.level or self.size != (width, height):
            self._context = self._open(level, (width, height))
            self._sequence_header = None  # a new size makes a new sequence header
            self.reopens += 1
            self.frames_since_open = 0
            self.level, self.size = level, (width, height)
            keyframe = True
        started = time.perf_counter()
        scaled = scale_i420(i420, width, height, self._scaled)
        if scaled is not i420:
            self._scaled = scaled  # our buffer, reused; never the frame's own array
        video = av.VideoFrame.from_ndarray(scaled, format="yuv420p")
        video.pts = pts
        video.time_base = TIME_BASE
        video.pict_type = (
            av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        )
        if self.encoder == "libsvtav1" and self.frames_since_open == 0:
            with time_sharing():  # SVT-AV1 opens here, and makes threads real-time as root
                packets = list(self._context.encode(video))
        else:
            packets = list(self._context.encode(video))
        self.frames_since_open += 1
        if self.encoder == "libsvtav1":
            packets = [self._av1_keyframe(p) if p.is_keyframe else p for p in packets]
        for packet in packets:
            packet.pts, packet.time_base = pts, TIME_BASE
            self.bytes += packet.size
        self.frames += 1
        self.keyframes += int(any(p.is_keyframe for p in packets))
        self.last_encode_s = time.perf_counter() - started
        return packets
