"""What a run measures: viewers (aiortc or Chromium), the server's process and its API.

Every viewer keeps, per frame, its arrival time (epoch ms) and, when the frame code reads,
its glass-to-glass latency. The runner drains them once a second, so the window that counts
(after warm-up) is cut by time, never by list positions. An aiortc viewer given the
server's reference folder also keeps each frame's seq and size (smoothness) and hands its
frames to a ``QualityScorer`` beside it (PSNR / SSIM against the reference); with
``save_video`` the scorer also hands each scored pair to a ``PairWriter`` (FFV1 files).
Chromium pages given the reference are sampled through a canvas about once a second and
scored the same way (``streamlab.quality.canvas``).
``freezes`` here are gaps > 100 ms (``gaps``); the standard freeze count is
``streamlab.quality.smoothness``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np
from aiortc.mediastreams import MediaStreamError

from streamlab import framecode
from streamlab.experiments import av_sync
from streamlab.quality.smoothness import Shown
from streamlab.webrtc.client import WhepClient

if TYPE_CHECKING:
    from streamlab.quality.canvas import CanvasSampler
    from streamlab.quality.pair import PairWriter
    from streamlab.quality.reference import ReferenceReader
    from streamlab.quality.scorer import QualityScorer, Scored

FREEZE_MS = 100.0
STAGE_LINE = re.compile(
    r'^streamlab_stage_seconds_(sum|count)\{(?=[^}]*stage="([^"]+)")[^}]*\}\s+([0-9.eE+-]+)$'
)


def epoch_ms() -> float:
    return time.time() * 1000.0


@dataclass
class ViewerLog:
    """Per frame: arrival (epoch ms); per readable code: (arrival, latency ms); per frame
    when measured: what was shown (arrival, seq, size) and its quality when scored."""

    arrivals: list[float] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)
    kbps: list[tuple[float, float]] = field(default_factory=list)
    shown: list[Shown] = field(default_factory=list)
    quality: list[Scored] = field(default_factory=list)
    clicks: list[float] = field(default_factory=list)  # A/V sync probe (Chromium): epoch ms
    marks: list[float] = field(default_factory=list)

    def window(self, start: float, end: float) -> ViewerLog:
        return ViewerLog(
            [a for a in self.arrivals if start <= a < end],
            [x for x in self.latencies if start <= x[0] < end],
            [x for x in self.kbps if start <= x[0] < end],
            [x for x in self.shown if start <= x.at_ms < end],
            sorted((x for x in list(self.quality) if start <= x.at_ms < end),
                   key=lambda x: x.at_ms),
            [x for x in self.clicks if start <= x < end],
            [x for x in self.marks if start <= x < end],
        )  # fmt: skip


class AiortcViewer(WhepClient):
    """A WHEP client that logs each frame's arrival and reads codes from the Y plane only.

    It logs what it showed (seq, size) for the smoothness figures; with ``reference`` (the
    folder of the server's ``ReferenceWriter``) it also scores every frame it can against
    the reference, in ``scorers`` threads beside it. With ``save_video`` (a folder; needs
    ``reference``) the scored pairs inside the writer's window are saved there (``pair``).
    """

    def __init__(
        self, url: str, *, reference: str | None = None, scorers: int = 1,
        save_video: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(url)
        self.log = ViewerLog()
        self._bytes: tuple[float, int] | None = None
        self.references: ReferenceReader | None = None
        self.scorer: QualityScorer | None = None
        self.pair: PairWriter | None = None
        if reference:
            from streamlab.quality.reference import ReferenceReader
            from streamlab.quality.scorer import QualityScorer

            if save_video:
                from streamlab.quality.pair import PairWriter

                self.pair = PairWriter(save_video)
            self.references = ReferenceReader(reference)
            self.scorer = QualityScorer(self.references, workers=scorers,
                                        results=self.log.quality, pairs=self.pair)  # fmt: skip

    async def _read(self, read_codes: bool) -> None:
        await self._track_ready.wait()
        log = self.log
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                return
            arrived = epoch_ms()
            self.received.frames += 1
            self._progress.set()
            log.arrivals.append(arrived)
            if not read_codes:
                continue
            yuv = frame.to_ndarray(format="yuv420p")  # a copy out of the decoder's buffers
            code = framecode.try_read(yuv[: frame.height], now=int(arrived))
            if code is not None:
                log.latencies.append((arrived, arrived - code.captured_ms))
            log.shown.append(Shown(arrived, code.seq if code else None, frame.width, frame.height))
            if code is not None and self.scorer is not None:
                self.scorer.submit(arrived, code.seq, yuv)

    async def close(self, *, delete: bool = True) -> int | None:
        """Close the peer, then let the scorer (and the pair writer) finish what they hold."""
        status = await super().close(delete=delete)
        if self.scorer is not None:
            await asyncio.to_thread(self.scorer.close)
        if self.pair is not None:
            await asyncio.to_thread(self.pair.close)
        if self.references is not None:
            self.references.close()
        return status

    async def sample(self) -> None:
        """Received kbit/s since the last call (the peer's DTLS transport: media + RTCP)."""
        if self.pc is None:
            return
        received = 0
        for stats in (await self.pc.getStats()).values():
            if getattr(stats, "type", "") == "transport":
                received += int(getattr(stats, "bytesReceived", 0) or 0)
        now = epoch_ms()
        if self._bytes is not None and now > self._bytes[0]:
            rate = (received - self._bytes[1]) * 8 / (now - self._bytes[0])  # bits/ms = kbit/s
            self.log.kbps.append((now, round(rate, 1)))
        self._bytes = (now, received)


HOOK = """
(() => {
  window.__sl = {lat: [], frames: []};
  let value;
  Object.defineProperty(window, "streamlab", {configurable: true, get() { return value; },
    set(v) {
      value = v;
      const push = v.latencies.push.bind(v.latencies);
      v.latencies.push = (...xs) => {
        for (const x of xs) window.__sl.lat.push([Date.now(), x]);
        return push(...xs);
      };
    }});
  document.addEventListener("DOMContentLoaded", () => {
    const video = document.querySelector("#player video") || document.querySelector("video");
    if (!video || !video.requestVideoFrameCallback) return;
    const tick = () => {
      window.__sl.frames.push(Date.now());
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  });
})();
"""
DRAIN = """() => { const out = window.__sl; window.__sl = {lat: [], frames: []};
  return {lat: out.lat, frames: out.frames, kbps: (window.streamlab.stats || {}).kbps || 0}; }"""


class ChromiumViewers:
    """``count`` pages of Debian's headless Chromium on the server's viewer page.

    With ``reference`` (the server's reference folder) each page's video is also sampled
    through a canvas once a sample (about once a second) and scored against it
    (``streamlab.quality.canvas``): the grabs run as one background task beside the
    sampling loop, never more than one at a time (a second they overlap is ``busy``).
    """

    def __init__(
        self, base_url: str, count: int, stream: str = "cam", *, reference: str | None = None
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/?stream={stream}"
        self.count = count
        self.reference = reference
        self.logs = [ViewerLog() for _ in range(count)]
        self.canvases: list[CanvasSampler] = []
        self.busy = 0
        self._grabs: asyncio.Task[None] | None = None
        self._playwright: Any = None
        self._browser: Any = None
        self._pages: list[Any] = []

    async def start(self, within_s: float = 30.0) -> None:
        from playwright.async_api import async_playwright

        from streamlab.testing import CHROMIUM, CHROMIUM_ARGS

        if self.reference:
            from streamlab.quality.canvas import CanvasSampler

            self.canvases = [CanvasSampler(self.reference, log.quality) for log in self.logs]
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        for _ in range(self.count):
            context = await self._browser.new_context()
            await context.add_init_script(HOOK)
            await context.add_init_script(av_sync.PROBE)  # idle unless the stream has audio
            page = await context.new_page()
            await page.goto(self.url)
            self._pages.append(page)
        for page in self._pages:
            await page.wait_for_function(
                "window.__sl && window.__sl.frames.length > 0", timeout=within_s * 1000
            )

    async def sample(self) -> None:
        now = epoch_ms()
        for page, log in zip(self._pages, self.logs, strict=True):
            out = await page.evaluate(DRAIN)
            log.arrivals.extend(float(t) for t in out["frames"])
            log.latencies.extend((float(t), float(v)) for t, v in out["lat"])
            log.kbps.append((now, float(out["kbps"])))
            sync = await page.evaluate(av_sync.DRAIN)
            log.clicks.extend(float(t) for t in sync["clicks"])
            log.marks.extend(float(t) for t in sync["marks"])
        if self.canvases:
            if self._grabs is None or self._grabs.done():
                self._grabs = asyncio.create_task(self._grab())
            else:
                self.busy += 1

    async def _grab(self) -> None:
        for page, canvas in zip(self._pages, self.canvases, strict=True):
            await canvas.sample(page)

    async def close(self) -> None:
        """Let the last grab finish, close the browser, then the scorers (queued scores in)."""
        try:
            if self._grabs is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._grabs, 10.0)
        finally:
            if self._browser is not None:
                await self._browser.close()
            if self._playwright is not None:
                await self._playwright.stop()
            for canvas in self.canvases:
                await asyncio.to_thread(canvas.close)


async def fetch_json(http: aiohttp.ClientSession, url: str) -> Any:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            return await response.json() if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


async def stage_totals(http: aiohttp.ClientSession, base_url: str) -> dict[str, list[float]]:
    """``stage -> [sum_s, count]`` from the server's Prometheus histogram (empty if none)."""
    try:
        async with http.get(base_url + "metrics", timeout=aiohttp.ClientTimeout(total=5)) as r:
            text = await r.text() if r.status == 200 else ""
    except (aiohttp.ClientError, TimeoutError):
        return {}
    totals: dict[str, list[float]] = {}
    for line in text.splitlines():
        match = STAGE_LINE.match(line)
        if match:
            kind, stage, value = match.groups()
            totals.setdefault(stage, [0.0, 0.0])[0 if kind == "sum" else 1] += float(value)
    return totals


def stage_means(before: dict[str, list[float]], after: dict[str, list[float]]) -> dict[str, float]:
    """Mean ms from capture to entering each stage, over the window."""
    means = {}
    for stage, (total, count) in after.items():
        base = before.get(stage, [0.0, 0.0])
        if count - base[1] > 0:
            means[stage] = round(1000 * (total - base[0]) / (count - base[1]), 2)
    return means


def counters(stream: dict[str, Any] | None) -> dict[str, float]:
    """Drop/skip counters of a stream's API entry, by place: ``pipeline.skipped`` ..."""
    out: dict[str, float] = {}
    if not stream:
        return out

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            last = prefix.rsplit(".", 1)[-1]
            if "drop" in last or "skip" in last or "drop" in prefix:
                out[prefix] = out.get(prefix, 0) + value

    walk("pipeline", stream.get("pipeline") or {})
    walk("delivery", stream.get("delivery") or {})
    for viewer in stream.get("viewers") or []:
        if isinstance(viewer, dict):
            walk("viewers", {"dropped": viewer.get("dropped", 0), "link": viewer.get("link") or {}})
    return out


def percentiles(values: list[float], qs: tuple[float, ...] = (50, 95, 99)) -> list[float | None]:
    if not values:
        return [None for _ in qs]
    return [round(float(v), 1) for v in np.percentile(np.asarray(values, dtype=float), qs)]


def intervals(arrivals: list[float]) -> list[float]:
    """The time between consecutive frames of one viewer, in ms."""
    return np.diff(np.asarray(sorted(arrivals), dtype=float)).tolist() if len(arrivals) > 1 else []


def gaps(arrivals: list[float]) -> tuple[int, float]:
    """(freezes = gaps longer than 100 ms, the longest gap in ms) of one viewer's frames."""
    if len(arrivals) < 2:
        return 0, 0.0
    steps = np.diff(np.asarray(sorted(arrivals)))
    return int((steps > FREEZE_MS).sum()), round(float(steps.max()), 1)
