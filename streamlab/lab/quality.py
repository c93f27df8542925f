"""Score what a viewer of a lab stream sees, live: PSNR / SSIM per frame and smoothness.

``served = sl.lab.serve(source, measure_quality=True)`` gives the served pipeline a
``ReferenceWriter`` (the frames its encoders are given, in a temporary folder removed when
the stream stops); ``viewer = await served.quality_viewer()`` connects a ``QualityViewer``:
the experiments' aiortc viewer, which reads each received frame's code and hands the frame
to a ``QualityScorer`` thread beside it (a full queue skips a frame, the viewer never
waits). ``viewer.quality()`` returns the figures so far under the experiments' JSON keys.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

import aiohttp

from streamlab.experiments.measure import AiortcViewer, epoch_ms, percentiles
from streamlab.quality.scorer import Scored
from streamlab.quality.summary import QUALITY_KEYS, quality_figures, smoothness_figures

MAX_FRAMES = 36_000  # per log, the newest kept: 20 minutes at 30 fps
TRIM_EVERY_S = 5.0


def reference_folder() -> str:
    """A new scratch folder for reference frames: in memory (/dev/shm) when there is one."""
    shm = "/dev/shm"
    where = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="streamlab-lab-reference-", dir=where)


class QualityViewer(AiortcViewer):
    """An aiortc viewer that scores every frame it can against the served stream's reference.

    Made by ``LabServer.quality_viewer()``. ``quality()``: the figures so far (the last
    ``MAX_FRAMES`` frames at most); ``scored(since)``: scored frames as they come (what
    ``LivePlot``'s ``psnr`` plots); ``await close()`` (the lab server's ``stop`` closes it too).
    """

    def __init__(
        self, url: str, *, reference: str, token: str | None = None, scorers: int = 1
    ) -> None:
        super().__init__(url, reference=reference, scorers=scorers)
        self.token = token
        self.closed = False
        self._forgotten = 0  # scored frames trimmed off the log's front
        self._trimmer: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        """The server's id of this viewer, cut to 8 characters as ``LivePlot`` shows it."""
        return (self.location or "").rstrip("/").rsplit("/", 1)[-1][:8] or "viewer"

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """The frame sizes received so far (width, height), sorted."""
        return sorted({(s.width, s.height) for s in list(self.log.shown)})

    async def connect(self, *, read_codes: bool = True) -> QualityViewer:
        """Connect to the stream (WHEP) and start scoring; frames are scored only when
        ``read_codes`` (their codes say which reference frame they show)."""
        await super().connect(read_codes=read_codes)
        self._trimmer = asyncio.get_running_loop().create_task(self._keep_bounded())
        return self

    def scored(self, since: int = 0) -> tuple[int, list[Scored]]:
        """``(count, frames)``: the frames scored after the first ``since`` of them, and how
        many were scored in all (pass it as ``since`` next time). Call on the event loop."""
        results = self.log.quality
        count = self._forgotten + len(results)
        return count, results[max(0, since - self._forgotten) :]

    def quality(self, last_s: float | None = None) -> dict[str, Any]:
        """The figures so far (over the last ``last_s`` seconds when given): PSNR-Y mean and
        5th percentile (dB), PSNR-YUV, SSIM-Y, frames scored (``quality_frames``) and the
        share of coded frames scored (``quality_sampled``), smoothness (freezes, pauses,
        harmonic fps, dropped and repeated frames), glass-to-glass latency p50/p95 (ms),
        ``frames`` received and ``frames_coded``, those whose code was read (only those can
        be scored; a frame damaged by loss may not be). Quality keys are None while nothing
        is scored."""
        log = self.log
        if last_s is not None:
            now = epoch_ms()
            log = log.window(now - 1000 * last_s, now + 1)
        coded = sum(1 for s in log.shown if s.seq is not None)
        figures: dict[str, Any] = dict.fromkeys(QUALITY_KEYS)
        figures.update(quality_figures(list(log.quality), coded))
        offered = self.references.offered()[-4 * MAX_FRAMES :] if self.references else None
        figures.update(smoothness_figures([list(log.shown)], offered))
        p50, p95 = percentiles([ms for _, ms in log.latencies], (50, 95))
        figures.update(latency_p50_ms=p50, latency_p95_ms=p95, frames=len(log.arrivals),
                       frames_coded=coded)  # fmt: skip
        return figures

    async def close(self, *, delete: bool = True) -> int | None:
        """Leave the stream and stop scoring (idempotent); the figures stay readable."""
        if self.closed:
            return None
        self.closed = True
        if self._trimmer is not None:
            self._trimmer.cancel()
        try:
            return await super().close(delete=delete)
        except (aiohttp.ClientError, OSError):  # the server went first: only the peer is left
            return await super().close(delete=False)

    async def _keep_bounded(self) -> None:
        while True:
            await asyncio.sleep(TRIM_EVERY_S)
            log = self.log
            for items in (log.arrivals, log.latencies, log.kbps, log.shown):
                del items[: max(0, len(items) - MAX_FRAMES)]
            extra = max(0, len(log.quality) - MAX_FRAMES)
            del log.quality[:extra]  # the scorer appends to this very list: trimmed in place
            self._forgotten += extra
