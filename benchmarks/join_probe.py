"""How a passthrough viewer joins a long-GOP camera: each ``passthrough_join`` mode, one run.

``python benchmarks/join_probe.py [--gop 300] [--joins 4] [--modes gop,bridge,wait]`` starts
the test camera (640x480@30, a keyframe every ``--gop`` frames), serves it with
``codec = passthrough`` and, for each mode in turn, opens ``--joins`` Debian Chromium viewers
one after the other at random points of the camera's group of pictures. Per join it records
the time from opening the page to the first picture shown, and the glass-to-glass latency
(the camera's frame code read from the picture) over the first two seconds after that and
over seconds 2 to 6. Prints a table and one JSON line per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from typing import Any

from streamlab.camera.launcher import TestCamera
from streamlab.config import load_config
from streamlab.experiments.measure import HOOK
from streamlab.testing import CHROMIUM, CHROMIUM_ARGS
from streamlab.webrtc.server import Server


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def join_once(browser: Any, url: str, watch_s: float) -> dict[str, Any]:
    context = await browser.new_context()
    await context.add_init_script(HOOK)
    page = await context.new_page()
    opened = time.time() * 1000
    await page.goto(url)
    await page.wait_for_function("window.__sl && window.__sl.frames.length > 0", timeout=30_000)
    await asyncio.sleep(watch_s)
    out = await page.evaluate("() => window.__sl")
    await context.close()
    first = float(out["frames"][0])
    early = [v for t, v in out["lat"] if t < first + 2000]
    later = [v for t, v in out["lat"] if first + 2000 <= t < first + 6000]
    return {"first_frame_ms": first - opened, "early": early, "later": later,
            "frames": len(out["frames"])}  # fmt: skip


async def run_mode(mode: str, camera: TestCamera, joins: int, gop_s: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    config = load_config(port=0, codec="passthrough", passthrough_join=mode)
    server = Server(config)
    server.add_stream(camera.url, name="cam")
    rows = []
    async with server, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        await asyncio.sleep(2.0)
        for _ in range(joins):
            await asyncio.sleep(random.uniform(0, gop_s))
            rows.append(await join_once(browser, f"{server.url}?stream=cam", 6.5))
        await browser.close()
        delivery = server.streams["cam"].delivery.stats()
    first = [r["first_frame_ms"] for r in rows]
    early = [v for r in rows for v in r["early"]]
    later = [v for r in rows for v in r["later"]]
    return {
        "mode": mode,
        "first_frame_ms": [round(v) for v in first],
        "first_frame_median_ms": round(statistics.median(first)),
        "early_p50_ms": percentile(early, 50), "early_p95_ms": percentile(early, 95),
        "later_p50_ms": percentile(later, 50), "later_p95_ms": percentile(later, 95),
        "gop_cache": delivery["gop_cache"], "bridges": delivery["bridges"],
    }  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gop", type=int, default=300)
    parser.add_argument("--joins", type=int, default=4)
    parser.add_argument("--modes", default="gop,bridge,wait")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)
    results = []
    with TestCamera(gop=args.gop) as camera:
        for mode in args.modes.split(","):
            results.append(await run_mode(mode, camera, args.joins, args.gop / 30))
            print(json.dumps(results[-1]), flush=True)
    print(
        f"\n{'mode':8} {'first picture (ms, median)':>27} {'0-2 s p50/p95':>15} {'2-6 s p50/p95':>15}"
    )
    for r in results:
        print(f"{r['mode']:8} {r['first_frame_median_ms']:>27} "
              f"{r['early_p50_ms']}/{r['early_p95_ms']:>7} {r['later_p50_ms']}/{r['later_p95_ms']:>7}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
