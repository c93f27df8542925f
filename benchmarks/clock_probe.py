"""RTP timestamps from arrival time or from the camera's clock (``rtp_clock``), in Chromium.

``python benchmarks/clock_probe.py [--seconds 20] [--rounds 2] [--codecs passthrough,vp8]``
starts the test camera (640x480@30) and, for each codec, alternates ``rtp_clock = arrival``
and ``camera`` (``--rounds`` times each, interleaved so that machine noise hits both alike).
Each run serves the camera to one Debian Chromium viewer for ``--seconds`` and records the
glass-to-glass latency (the camera's frame code read from the picture) and Chromium's own
playout delay, ``jitterBufferDelay / jitterBufferEmittedCount`` from getStats. Prints one
JSON line per run and a table of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from typing import Any

from streamlab.camera.launcher import TestCamera
from streamlab.config import load_config
from streamlab.experiments.measure import HOOK
from streamlab.testing import CHROMIUM, CHROMIUM_ARGS
from streamlab.webrtc.server import Server

PLAYOUT = """async () => {
  const pc = window.streamlab && window.streamlab.pc;
  const out = {delay: 0, emitted: 0, decoded: 0};
  if (!pc) return out;
  (await pc.getStats()).forEach(s => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      out.delay = s.jitterBufferDelay; out.emitted = s.jitterBufferEmittedCount;
      out.decoded = s.framesDecoded;
    }
  });
  return out;
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


async def run(browser: Any, camera: TestCamera, codec: str, clock: str, seconds: float) -> dict[str, Any]:
    server = Server(load_config(port=0, codec=codec, rtp_clock=clock))
    server.add_stream(camera.url, name="cam")
    async with server:
        context = await browser.new_context()
        await context.add_init_script(HOOK)
        page = await context.new_page()
        await page.goto(f"{server.url}?stream=cam")
        await page.wait_for_function("window.__sl && window.__sl.frames.length > 30", timeout=30_000)
        await page.evaluate("() => { window.__sl.lat = []; }")
        before = await page.evaluate(f"({PLAYOUT})()")
        await asyncio.sleep(seconds)
        after = await page.evaluate(f"({PLAYOUT})()")
        latencies = [float(v) for _, v in await page.evaluate("() => window.__sl.lat")]
        await context.close()
    emitted = after["emitted"] - before["emitted"]
    playout = 1000 * (after["delay"] - before["delay"]) / emitted if emitted else float("nan")
    return {"codec": codec, "rtp_clock": clock, "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95), "playout_ms": round(playout, 1),
            "fps": round((after["decoded"] - before["decoded"]) / seconds, 1)}  # fmt: skip


async def main() -> None:
    from playwright.async_api import async_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--codecs", default="passthrough,vp8")
    args = parser.parse_args()
    rows = []
    with TestCamera() as camera:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for codec in args.codecs.split(","):
                for _ in range(args.rounds):
                    for clock in ("arrival", "camera"):
                        rows.append(await run(browser, camera, codec, clock, args.seconds))
                        print(json.dumps(rows[-1]), flush=True)
            await browser.close()
    print(f"\n{'codec':12} {'rtp_clock':9} {'p50':>6} {'p95':>6} {'playout':>8} {'fps':>5}")
    for codec in args.codecs.split(","):
        for clock in ("arrival", "camera"):
            mine = [r for r in rows if r["codec"] == codec and r["rtp_clock"] == clock]
            cell = {k: statistics.median(r[k] for r in mine) for k in ("p50_ms", "p95_ms", "playout_ms", "fps")}
            print(f"{codec:12} {clock:9} {cell['p50_ms']:6.0f} {cell['p95_ms']:6.0f} "
                  f"{cell['playout_ms']:8.1f} {cell['fps']:5.1f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
