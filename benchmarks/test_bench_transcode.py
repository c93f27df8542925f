"""Encoder throughput: streamlab's shared encoder against ffmpeg on the same clip.

The end-to-end comparisons (latency, CPU by viewers, the aiortc restreamer, Chromium) are
scenario files now: benchmarks/default.toml and full.toml (``make bench``).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import av
import pytest

from streamlab.experiments.baselines import FFMPEG_OPTIONS
from streamlab.strategies.quality import level
from streamlab.webrtc.encoder import SharedEncoder

CLIP = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "car-detection.mp4"


@pytest.mark.skipif(not CLIP.exists(), reason="shared clip missing")
@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_transcode_throughput_vs_ffmpeg(benchmark, codec: str) -> None:  # type: ignore[no-untyped-def]
    encoder_name = "libvpx" if codec == "vp8" else "libx264"
    rung = level("1280x720")
    with av.open(str(CLIP)) as container:
        images = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]

    def ours() -> None:
        encoder = SharedEncoder(encoder_name)
        for pts, image in enumerate(images):
            encoder.encode(image, pts * 3000, rung, keyframe=pts == 0)

    benchmark.group = "transcode throughput"
    benchmark.pedantic(ours, rounds=2, iterations=1)
    ours_fps = len(images) / benchmark.stats.stats.min
    started = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(CLIP), "-an",
                    *FFMPEG_OPTIONS[codec], "-b:v", str(rung.bitrate), "-threads", "2",
                    "-f", "null", "-"], check=True)  # fmt: skip
    ffmpeg_fps = len(images) / (time.perf_counter() - started)
    height, width = images[0].shape[:2]
    benchmark.extra_info.update(codec=codec, size=f"{width}x{height}", frames=len(images),
                                streamlab_fps=round(ours_fps, 1), ffmpeg_fps=round(ffmpeg_fps, 1),
                                ratio=round(ours_fps / ffmpeg_fps, 2))  # fmt: skip
