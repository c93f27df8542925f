"""Glass-to-glass latency in headless Chromium (the real viewer), read off the video.

The viewer page reads the frame code from each presented frame through a canvas
(``requestVideoFrameCallback``), so this is camera render → RTSP → server → WebRTC →
Chromium decode → presentation. Same camera, same page, for streamlab and the baseline.
"""

from __future__ import annotations

import time

import pytest
from servers import server, summary

SCENARIOS = [("streamlab", "vp8"), ("streamlab", "h264"), ("streamlab", "passthrough"),
             ("baseline", "vp8")]  # fmt: skip



@pytest.mark.parametrize(("kind", "codec"), SCENARIOS)
def test_latency_in_chromium(benchmark, chromium_page, rtsp_camera, kind: str, codec: str) -> None:  # type: ignore[no-untyped-def]
    figures: dict[str, float] = {}

    def run() -> None:
        with server(kind, rtsp_camera.url, codec=codec) as (whep, _):
            page = chromium_page
            page.goto(whep.rsplit("/whep/", 1)[0] + "/?stream=cam")
            page.wait_for_function("window.streamlab.stats.framesDecoded > 60", timeout=30_000)
            page.evaluate("window.streamlab.latencies.length = 0")
            first = page.evaluate("window.streamlab.stats.framesDecoded")
            started = time.monotonic()
            time.sleep(8)
            latencies = page.evaluate("window.streamlab.latencies.slice()")
            decoded = page.evaluate("window.streamlab.stats.framesDecoded") - first
            figures.update(fps=round(decoded / (time.monotonic() - started), 1),
                           frames=len(latencies), **summary(latencies))  # fmt: skip
            page.goto("about:blank")

    benchmark.group = "glass-to-glass latency (Chromium)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(system=kind, codec=codec, **figures)
    assert figures["frames"] > 50
