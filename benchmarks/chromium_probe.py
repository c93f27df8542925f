"""Where Chromium's glass-to-glass time goes: streamlab against the usual aiortc restreamer.

``python benchmarks/chromium_probe.py [--seconds 15] [--rounds 3]
[--targets restreamer,vp8,passthrough]`` starts the RTSP test camera (640x480@30) and each
target as its own process (``python -m streamlab.experiments.hosts ...``, as ``streamlab
bench`` does), one after the other, ``--rounds`` times interleaved. A target is
``restreamer`` or a streamlab codec, optionally with settings: ``vp8``,
``passthrough+rtp_clock=camera``, ``vp8+playout_delay=browser``, ``vp8+analyze=people``
(a comma list). One Debian Chromium viewer watches the viewer page; besides the
glass-to-glass latency read from the frame code, it records Chromium's own per-frame
figures from getStats: playout (jitterBufferDelay), the jitter buffer's target, decode time,
the processing delay from first packet to decoded, and bytes per frame. Prints one JSON line
per run and a table of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from typing import Any

from streamlab.experiments.measure import HOOK
from streamlab.testing import CHROMIUM, CHROMIUM_ARGS

INBOUND = """async () => {
  const pc = window.streamlab && window.streamlab.pc;
  if (!pc) return null;
  let out = null;
  (await pc.getStats()).forEach(s => { if (s.type === "inbound-rtp" && s.kind === "video") out = s; });
  return out && {delay: out.jitterBufferDelay, target: out.jitterBufferTargetDelay,
    emitted: out.jitterBufferEmittedCount, decode: out.totalDecodeTime,
    processing: out.totalProcessingDelay, decoded: out.framesDecoded,
    bytes: out.bytesReceived, codec: out.codecId};
}"""
FIGURES = ("p50_ms", "p95_ms", "playout_ms", "target_ms", "decode_ms", "processing_ms",
           "kbytes_per_frame", "fps")  # fmt: skip


async def host(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """A ``streamlab.experiments.hosts`` process and the URL it prints once ready."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamlab.experiments.hosts", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        if not line:
            raise RuntimeError(f"{args[0]} ended before it was ready")
        if ": " in line and "://" in line:
            return process, line.split(": ", 1)[1].strip()


async def stop(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()


def per_frame(before: dict[str, float], after: dict[str, float], key: str, by: str) -> float:
    count = after[by] - before[by]
    return round(1000 * (after[key] - before[key]) / count, 1) if count else float("nan")


async def measure(
    browser: Any, camera_url: str, target: str, seconds: float, port: int
) -> dict[str, Any]:
    if target == "restreamer":
        process, url = await host("restreamer", "--source", camera_url, "--port", str(port))
    else:
        codec, *pairs = target.split("+")
        settings: dict[str, Any] = {"codec": codec}
        for key, value in (p.split("=", 1) for p in pairs):  # analyze=people,motion: a list
            settings[key] = value.split(",") if key == "analyze" else value
        process, url = await host("serve", "--source", camera_url, "--port", str(port),
                                  "--settings", json.dumps(settings))  # fmt: skip
    try:
        context = await browser.new_context()
        await context.add_init_script(HOOK)
        page = await context.new_page()
        await page.goto(f"{url.rstrip('/')}/?stream=cam")
        await page.wait_for_function(
            "window.__sl && window.__sl.frames.length > 60", timeout=30_000
        )
        await page.evaluate("() => { window.__sl.lat = []; }")
        before = await page.evaluate(f"({INBOUND})()")
        await asyncio.sleep(seconds)
        after = await page.evaluate(f"({INBOUND})()")
        latencies = sorted(float(v) for _, v in await page.evaluate("() => window.__sl.lat"))
        await context.close()
    finally:
        await stop(process)
    decoded = after["decoded"] - before["decoded"]
    return {
        "target": target,
        "p50_ms": latencies[len(latencies) // 2],
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "playout_ms": per_frame(before, after, "delay", "emitted"),
        "target_ms": per_frame(before, after, "target", "emitted"),
        "decode_ms": per_frame(before, after, "decode", "decoded"),
        "processing_ms": per_frame(before, after, "processing", "decoded"),
        "kbytes_per_frame": round((after["bytes"] - before["bytes"]) / max(decoded, 1) / 1000, 1),
        "fps": round(decoded / seconds, 1),
    }


async def main() -> None:
    from playwright.async_api import async_playwright

    from streamlab.camera.launcher import free_port

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", default="restreamer,vp8,passthrough")
    args = parser.parse_args()
    targets = args.targets.split(",")
    rows: list[dict[str, Any]] = []
    camera, camera_url = await host("camera", "--size", "640x480", "--fps", "30")
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(args.rounds):
                for target in targets:
                    rows.append(
                        await measure(browser, camera_url, target, args.seconds, free_port())
                    )
                    print(json.dumps(rows[-1]), flush=True)
            await browser.close()
    finally:
        await stop(camera)
    print("\n" + " ".join(f"{h:>14}" for h in ("target", *FIGURES)))
    for target in targets:
        mine = [r for r in rows if r["target"] == target]
        cells = [statistics.median(r[k] for r in mine) for k in FIGURES]
        print(f"{target:>14} " + " ".join(f"{c:14.1f}" for c in cells))


if __name__ == "__main__":
    asyncio.run(main())
