"""A stream watched through a bottleneck streamlab did not write.

``watch_behind(bottleneck, server=..., viewer=...)`` runs the test camera and a server
(streamlab with any settings, or the usual aiortc restreamer) in the bottleneck's server
namespace and one viewer (aiortc, or Debian's Chromium) in its viewer namespace, for
``seconds``; the capacity can follow a schedule (``[(at_s, rate), ...]``). It returns one
record a second (frames shown, size, and what the server says of the viewer: rung,
estimate, probes) and the W3C/libwebrtc smoothness of the whole run (freezes, pauses,
harmonic frame rate) from each frame's arrival.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamlab.experiments import av_sync
from streamlab.experiments.bottleneck import KernelBottleneck
from streamlab.experiments.processes import HOSTS, Child
from streamlab.quality.smoothness import Shown, smoothness

SECOND = "second: "
ARRIVALS = "arrivals: "
CHROMIUM = "/usr/bin/chromium"


@dataclass
class Watched:
    """What the viewer got: a record a second, and the run's smoothness."""

    seconds: list[dict[str, Any]] = field(default_factory=list)
    smoothness: dict[str, Any] = field(default_factory=dict)
    queue: dict[str, int] = field(default_factory=dict)
    clicks: list[float] = field(default_factory=list)  # A/V sync probe (Chromium), epoch ms
    marks: list[float] = field(default_factory=list)
    started_ms: float = 0.0  # when the viewer page opened (epoch ms)

    def window(self, start_s: float, end_s: float = 1e9) -> list[dict[str, Any]]:
        return [s for s in self.seconds if start_s < s["t"] <= end_s]

    def fps(self, start_s: float, end_s: float = 1e9) -> float:
        chosen = self.window(start_s, end_s)
        return sum(s["frames"] for s in chosen) / max(1, len(chosen))


def _viewer_of(info: dict[str, Any]) -> dict[str, Any]:
    streams = info.get("streams") or [{}]
    viewers = streams[0].get("viewers") or [{}]
    return viewers[0] if viewers else {}


def _server_view(base_url: str) -> dict[str, Any]:
    """What the server says of its (first) viewer; {} on error."""
    try:
        with urllib.request.urlopen(base_url + "api/streams", timeout=2) as response:
            return _view_of(json.loads(response.read()))
    except (OSError, ValueError):
        return {}


def _view_of(info: dict[str, Any]) -> dict[str, Any]:
    """The figures of ``GET /api/streams`` a record keeps ({} for the restreamer)."""
    viewer = _viewer_of(info)
    if not viewer:
        return {}
    probes = viewer.get("probes") or []
    return {"rung": viewer.get("rung"), "target_bps": viewer.get("target_bps"),
            "estimate_bps": viewer.get("estimate_bps"), "remb_bps": viewer.get("remb_bps"),
            "loss": viewer.get("loss"), "kbps": viewer.get("kbps"),
            "probes": len(probes), "last_probe": probes[-1] if probes else None,
            "transport_cc": viewer.get("transport_cc"),
            "queue_delay_ms": viewer.get("queue_delay_ms")}  # fmt: skip


async def watch_with_aiortc(base_url: str, address: str, seconds: float) -> None:
    """Watch ``base_url``'s stream ``cam``; print a ``second:`` JSON line each second and
    the frames' ``arrivals:`` at the end (run inside the viewer namespace)."""
    from streamlab.webrtc.client import WhepClient

    client = WhepClient(base_url + "whep/cam", addresses=(address,))
    await client.connect(read_codes=False)
    received = client.received
    shown = 0
    for second in range(1, int(seconds) + 1):
        await asyncio.sleep(1.0)
        frames = len(received.arrivals)
        size = received.frame_sizes[-1] if received.frame_sizes else None
        view = await asyncio.to_thread(_server_view, base_url)
        record = {"t": second, "frames": frames - shown, "size": size, **view}
        print(SECOND + json.dumps(record), flush=True)
        shown = frames
    arrivals = [(a * 1000, w, h) for a, (w, h) in zip(received.arrivals, received.frame_sizes,
                                                      strict=False)]  # fmt: skip
    print(ARRIVALS + json.dumps(arrivals), flush=True)
    await client.close()


def _smoothness(arrivals: list[tuple[float, int, int]]) -> dict[str, Any]:
    figures = smoothness([Shown(at, None, w, h) for at, w, h in arrivals]).to_dict()
    return {k: v for k, v in figures.items() if v is not None}


def watch_behind(
    bottleneck: KernelBottleneck,
    *,
    server: str = "streamlab",
    settings: dict[str, Any] | None = None,
    viewer: str = "aiortc",
    seconds: float = 20.0,
    camera_size: str = "1280x720",
    schedule: list[tuple[float, str]] | None = None,
    camera_options: dict[str, str] | None = None,
) -> Watched:
    """Run camera + ``server`` (``streamlab`` | ``restreamer``) behind ``bottleneck`` and
    one ``viewer`` (``aiortc`` | ``chromium``) for ``seconds``; see the module docstring.
    ``camera_options``: the test camera's (``{"audio": "pcma", "wave": "sync"}``: a
    Chromium viewer then also records the A/V sync probe's clicks and marks)."""
    camera_command = [*HOSTS, "camera", "--size", camera_size,
                      "--options", json.dumps(camera_options or {})]  # fmt: skip
    camera = Child(bottleneck.command("server", camera_command), what="test camera")
    with camera:
        source = camera.ready("camera:", 40.0)
        host = bottleneck.server_address
        if server == "restreamer":
            command = [*HOSTS, "restreamer", "--source", source, "--port", "8080",
                       "--host", host]  # fmt: skip
        else:
            command = [*HOSTS, "serve", "--source", source, "--port", "8080", "--host", host,
                       "--allow-network", bottleneck.network,
                       "--settings", json.dumps(settings or {})]  # fmt: skip
        with Child(bottleneck.command("server", command), what=server) as served:
            base_url = served.ready("viewer:", 40.0)
            changer = _follow_schedule(bottleneck, schedule or [])
            try:
                if viewer == "chromium":
                    watched = _watch_with_chromium(bottleneck, base_url, seconds)
                else:
                    watched = _watch_in_namespace(bottleneck, base_url, seconds)
            finally:
                changer.set()
    stats = bottleneck.stats()
    watched.queue = {"sent_bytes": stats.sent_bytes, "sent_packets": stats.sent_packets,
                     "dropped": stats.dropped}  # fmt: skip
    return watched


def _follow_schedule(bottleneck: KernelBottleneck, schedule: list[tuple[float, str]]) -> Any:
    """Apply ``(at_s, rate)`` changes from now on, in a thread; returns its stop event."""
    stop = threading.Event()

    def run() -> None:
        started = time.monotonic()
        for at_s, rate in sorted(schedule):
            if stop.wait(max(0.0, at_s - (time.monotonic() - started))):
                return
            bottleneck.set_rate(rate)

    if schedule:
        threading.Thread(target=run, name="bottleneck-schedule", daemon=True).start()
    return stop


def _watch_in_namespace(bottleneck: KernelBottleneck, base_url: str, seconds: float) -> Watched:
    command = [*HOSTS, "viewer", "--url", base_url, "--address", bottleneck.viewer_address,
               "--seconds", str(seconds)]  # fmt: skip
    watched = Watched()
    with Child(bottleneck.command("viewer", command), what="aiortc viewer") as child:
        child.ready(ARRIVALS, seconds + 60.0)
        for line in list(child.lines):
            if line.startswith(SECOND):
                watched.seconds.append(json.loads(line[len(SECOND) :]))
            elif line.startswith(ARRIVALS):
                watched.smoothness = _smoothness(json.loads(line[len(ARRIVALS) :]))
    return watched


PAGE_STATE = """() => {
  const s = window.streamlab;
  if (!s) return null;
  return {decoded: s.stats.framesDecoded || 0, size: s.stats.size || null,
          freezes: s.stats.freezeCount ?? null, state: s.state};
}"""
API_STREAMS = """async () => {
  try { return await (await fetch("/api/streams")).json(); } catch (e) { return null; }
}"""
RECORD_FRAMES = """() => {
  window.__arrivals = [];
  const video = document.querySelector("video");
  const each = (now, meta) => {
    window.__arrivals.push([Date.now(), meta.width, meta.height]);
    video.requestVideoFrameCallback(each);
  };
  video.requestVideoFrameCallback(each);
}"""


def _watch_with_chromium(bottleneck: KernelBottleneck, base_url: str, seconds: float) -> Watched:
    """Debian's Chromium, started inside the viewer namespace (Playwright talks to it over
    a pipe, so it needs no network of ours)."""
    from playwright.sync_api import sync_playwright

    watched = Watched()
    with tempfile.TemporaryDirectory(prefix="streamlab-ns-") as folder:
        wrapper = Path(folder) / "chromium"
        inside = f"ip netns exec {bottleneck.viewer_ns} {CHROMIUM}"
        wrapper.write_text(f'#!/bin/sh\nexec {inside} "$@"\n')
        os.chmod(wrapper, 0o755)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(wrapper),
                args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
            )
            try:
                page = browser.new_page()
                page.add_init_script(av_sync.PROBE)  # idle unless the stream has audio
                watched.started_ms = time.time() * 1000
                page.goto(base_url)
                page.wait_for_selector("video", timeout=20_000)
                page.evaluate(RECORD_FRAMES)
                shown = 0
                for second in range(1, int(seconds) + 1):
                    page.wait_for_timeout(1000)
                    state = page.evaluate(PAGE_STATE) or {}
                    frames = int(page.evaluate("window.__arrivals.length"))
                    info = page.evaluate(API_STREAMS)
                    record = {"t": second, "frames": frames - shown, "size": state.get("size"),
                              "freezes": state.get("freezes"), **_view_of(info or {})}  # fmt: skip
                    watched.seconds.append(record)
                    shown = frames
                watched.smoothness = _smoothness(page.evaluate("window.__arrivals"))
                sync = page.evaluate(av_sync.DRAIN)
                watched.clicks, watched.marks = list(sync["clicks"]), list(sync["marks"])
            finally:
                browser.close()
    return watched
