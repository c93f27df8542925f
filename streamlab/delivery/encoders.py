"""Shared encoders, one per (codec, rung) in use: started on demand, stopped when unused.

Each runs in its own thread; while it is busy the newest frame waits and older ones are
dropped (counted), so a slow encoder lowers its own frame rate and nobody else's. A rung
with a lower frame rate than the source takes frames on a schedule of its own rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import av
import structlog

from streamlab.clock import now
from streamlab.delivery.keyframes import KeyframeLimiter
from streamlab.frame import Frame
from streamlab.strategies.codec import codecs
from streamlab.strategies.quality import Level
from streamlab.webrtc.encoder import SharedEncoder

log = structlog.get_logger("streamlab.delivery")

EARLY_SHARE = 0.25  # a frame this share of the rung's interval early is still on time


@dataclass(frozen=True, slots=True)
class EncoderKey:
    """Which encoder: ``codec`` is vp8, h264 or passthrough (the camera's own units)."""

    codec: str
    rung: str

    def __str__(self) -> str:
        return f"{self.codec}/{self.rung}"


Output = Callable[[EncoderKey, list[av.Packet], bool], None]


class RungEncoder:
    """One shared encoder for every viewer on ``key``; ``offer(frame, ticks)`` on the loop."""

    def __init__(
        self,
        key: EncoderKey,
        level: Level,
        output: Output,
        *,
        stream: str,
        threads: int = 1,
        vp8_cpu_used: int = 16,
        keyframe_interval_s: float = 0.5,
        source_fps: float = 30.0,
    ) -> None:
        self.key = key
        self.level = level
        self.output = output
        self.limiter = KeyframeLimiter(keyframe_interval_s)
        self.encoder = SharedEncoder(
            encoder_of(key.codec), threads=threads, vp8_cpu_used=vp8_cpu_used
        )
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"encoder:{stream}:{key}")
        self._busy = False
        self._waiting: tuple[Frame, int] | None = None
        self.source_fps = source_fps
        self._next_due: float | None = None
        self._closed = False
        self.busy_drops = 0
        self.started_at = now()

    def offer(self, frame: Frame, ticks: int) -> None:
        if self._closed or not getattr(frame, "has_pixels", True) or not self._wanted(frame):
            return
        if self._busy:
            if self._waiting is not None:
                self.busy_drops += 1
            self._waiting = (frame, ticks)
            return
        self._start(frame, ticks)

    def _wanted(self, frame: Frame) -> bool:
        """Frame-rate decimation for rungs slower than the source. Frames are taken on a
        schedule of the rung's rate, on the source's own clock, so frames that arrive early
        or bunched (camera jitter, a busy machine) are not dropped for it. A rung at the
        source's rate takes every frame; a clock that jumps back or stalls starts afresh."""
        if self.level.fps >= self.source_fps:
            return True
        at = _media_time(frame)
        interval = 1.0 / self.level.fps
        due = self._next_due
        if due is not None and due - 2 * interval <= at < due - EARLY_SHARE * interval:
            return False
        if due is None or not due - 2 * interval <= at <= due + interval:
            due = at
        self._next_due = due + interval
        return True

    def _start(self, frame: Frame, ticks: int) -> None:
        self._busy = True
        keyframe = self.limiter.take(now())
        frame.mark("encode")
        job = asyncio.get_running_loop().run_in_executor(
            self._executor, self.encoder.encode, frame, ticks, self.level, keyframe
        )
        job.add_done_callback(lambda done: self._encoded(done, frame))

    def _encoded(self, done: asyncio.Future[list[av.Packet]], frame: Frame) -> None:
        self._busy = False
        if self._closed:
            return
        if done.cancelled() or done.exception() is not None:
            if not done.cancelled():
                log.warning("encode_failed", encoder=str(self.key), error=str(done.exception()))
            self.limiter.request()
        else:
            packets = done.result()
            frame.mark("encoded")
            keyframe = any(p.is_keyframe for p in packets)
            if keyframe:
                self.limiter.sent(now())
            if packets:
                self.output(self.key, packets, keyframe)
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not self._closed:
            self._start(*waiting)

    def set_level(self, level: Level) -> None:
        """The rung's parameters changed (the source size did): reopen at the next frame."""
        self.level = level

    def close(self) -> None:
        self._closed = True
        self._waiting = None
        self._executor.shutdown(wait=False)

    def stats(self) -> dict[str, Any]:
        encoder = self.encoder
        return {
            "key": str(self.key),
            "width": encoder.size[0] if encoder.size else self.level.width,
            "height": encoder.size[1] if encoder.size else self.level.height,
            "fps": self.level.fps,
            "target_bps": self.level.bitrate,
            "frames": encoder.frames,
            "keyframes": encoder.keyframes,
            "keyframe_requests": self.limiter.requests,
            "keyframes_forced": self.limiter.forced,
            "busy_drops": self.busy_drops,
            "encode_ms": round(encoder.last_encode_s * 1000, 2),
            "bytes": encoder.bytes,
        }


def _media_time(frame: Frame) -> float:
    """The frame's presentation time in seconds (its arrival time when it has none)."""
    if frame.pts is None or not frame.time_base:
        return frame.captured_at
    return float(frame.pts * frame.time_base)


def encoder_of(codec: str) -> str:
    """The PyAV encoder of a transcoding codec strategy (``vp8`` -> ``libvpx`` ...)."""
    encoder = codecs.create(codec).encoder
    if encoder is None:
        raise ValueError(f"codec {codec!r} is not encoded here")
    return encoder
