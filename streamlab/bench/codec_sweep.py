"""Rate-quality sweep: each codec encodes the same frames at several bitrates with the
project's own shared encoder (the real-time settings viewers get), the packets are decoded
again, and every decoded frame is scored against its source frame.

One point per (clip, codec, bitrate): the rate actually sent (all packets, keyframe
included, over the clip's duration), mean PSNR-Y / PSNR-YUV / SSIM-Y of the frames, and
encode ms per frame (p50 / p95, scaling + encoding, as ``SharedEncoder`` times it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from streamlab.bench.codec_clips import Clip
from streamlab.strategies.codec import TRANSCODED, codecs
from streamlab.strategies.quality import Level, bitrate_for

DECODERS = {"vp8": "vp8", "h264": "h264", "vp9": "vp9", "av1": "libdav1d"}
# bitrates as shares of the ladder's own target for the clip's size and rate (1.0 is what a
# viewer on the source rung is sent; the top rung of the sweep is twice that)
RATE_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True, slots=True)
class RdPoint:
    """One codec at one bitrate on one clip."""

    clip: str
    codec: str
    target_bps: int
    rate_bps: float
    psnr_y: float
    psnr_yuv: float
    ssim_y: float
    encode_ms_p50: float
    encode_ms_p95: float
    frames: int
    repeated: int  # source frames with no new decoded picture (the previous one is scored)
    keyframes: int
    width: int
    height: int
    fps: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def targets_for(clip: Clip, factors: Sequence[float] = RATE_FACTORS) -> list[int]:
    """The sweep's bitrates for ``clip``: ``factors`` of the ladder's target for its size."""
    width, height = clip.size
    base = bitrate_for(width, height, round(clip.fps))
    return [int(base * f) for f in factors]


@contextmanager
def one_core() -> Iterator[int | None]:
    """Pin this process (and the encoder threads it starts) to one CPU, the one it may run
    on with the highest number; yields that CPU (None where affinity is not available)."""
    getter = getattr(os, "sched_getaffinity", None)
    setter = getattr(os, "sched_setaffinity", None)
    if getter is None or setter is None:
        yield None
        return
    before = getter(0)
    cpu = max(before)
    setter(0, {cpu})
    try:
        yield cpu
    finally:
        setter(0, before)


def measure(clip: Clip, codec: str, target_bps: int) -> RdPoint:
    """Encode ``clip`` with ``codec`` at ``target_bps`` (one thread, the viewers' settings),
    decode, and score every frame against its source."""
    import av

    from streamlab.quality.metrics import frame_quality
    from streamlab.webrtc.encoder import TIME_BASE, SharedEncoder

    encoder_name = codecs.create(codec).encoder
    if encoder_name is None or codec not in DECODERS:
        raise ValueError(f"codec {codec!r} is not one the sweep encodes ({', '.join(TRANSCODED)})")
    width, height = clip.size
    level = Level(f"{target_bps // 1000}k", width, height, max(1, round(clip.fps)), target_bps)
    encoder = SharedEncoder(encoder_name, threads=1)
    decoder: Any = av.CodecContext.create(DECODERS[codec], "r")
    decoder.thread_count = 1
    ticks = int(TIME_BASE.denominator / clip.fps)
    encode_ms: list[float] = []
    scores: list[tuple[float, float, float]] = []
    last: np.ndarray | None = None
    repeated = 0

    def score_up_to(index: int, picture: np.ndarray | None) -> None:
        """Score source frames up to ``index`` (a repeat of ``last`` fills any gap)."""
        nonlocal last, repeated
        while len(scores) < index:
            if last is None:
                raise RuntimeError(f"{codec}: no picture decoded for frame {len(scores)}")
            repeated += 1
            scores.append(_score(frame_quality, last, clip, len(scores)))
        if picture is not None and len(scores) == index:
            last = picture
            scores.append(_score(frame_quality, picture, clip, index))

    def take(frames: Sequence[Any]) -> None:
        for decoded in frames:
            index = round(decoded.pts / ticks) if decoded.pts is not None else len(scores)
            score_up_to(index, decoded.to_ndarray(format="yuv420p"))

    for index, source in enumerate(clip.frames):
        packets = encoder.encode(_I420(source), index * ticks, level, index == 0)
        encode_ms.append(encoder.last_encode_s * 1000)
        for packet in packets:
            take(decoder.decode(packet))
    _drain(encoder)  # an encoder that is not drained (SVT-AV1) complains when it is freed
    take(decoder.decode(None))
    score_up_to(len(clip.frames), None)
    psnr_y, psnr_yuv, ssim_y = (float(np.mean(column)) for column in zip(*scores, strict=True))
    return RdPoint(
        clip=clip.name, codec=codec, target_bps=target_bps,
        rate_bps=encoder.bytes * 8 / clip.duration_s,
        psnr_y=psnr_y, psnr_yuv=psnr_yuv, ssim_y=ssim_y,
        encode_ms_p50=float(np.percentile(encode_ms, 50)),
        encode_ms_p95=float(np.percentile(encode_ms, 95)),
        frames=len(clip.frames), repeated=repeated, keyframes=encoder.keyframes,
        width=width, height=height, fps=clip.fps,
    )  # fmt: skip


def _drain(encoder: Any) -> None:
    """Send the end of stream to the encoder's context; real-time encoders hold no frames."""
    context = getattr(encoder, "_context", None)
    if context is not None:
        context.encode(None)


class _I420:
    """An I420 array as the shared encoder takes a decoded frame (``frame.i420()``)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def i420(self) -> np.ndarray:
        return self._array


def _score(quality: Callable[..., Any], picture: np.ndarray, clip: Clip,
           index: int) -> tuple[float, float, float]:  # fmt: skip
    got = quality(picture, clip.frames[index], exclude_code=clip.has_code)
    return got.psnr_y, got.psnr_yuv, got.ssim_y


def sweep(
    clips: Sequence[Clip],
    *,
    codecs_: Sequence[str] = TRANSCODED,
    factors: Sequence[float] = RATE_FACTORS,
    progress: Callable[[RdPoint], None] | None = None,
) -> list[RdPoint]:
    """Every clip x codec x bitrate, in that order; ``progress`` sees each point as it lands."""
    points = []
    for clip in clips:
        for codec in codecs_:
            for target in targets_for(clip, factors):
                point = measure(clip, codec, target)
                points.append(point)
                if progress is not None:
                    progress(point)
    return points
