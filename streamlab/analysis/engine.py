"""The analysis engine: detectors run in a bounded executor; the latest result is kept.

Frames never wait for analysis. ``submit`` hands a frame to a worker only when one is free
(at most ``workers`` analyses in flight) and returns at once; when a result arrives it
becomes ``latest`` and is attached to every later frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from streamlab import framecode
from streamlab.analysis.detectors import DetectorPool
from streamlab.clock import now
from streamlab.detection import AnalysisResult, Detection
from streamlab.events import AnalysisCompleted, AnalysisStarted, EventBus
from streamlab.frame import Frame
from streamlab.strategies.skipping import AnalysisState


class AnalysisEngine:
    """Runs detectors off the event loop with bounded in-flight work."""

    def __init__(self, stream: str, bus: EventBus, *, workers: int = 2) -> None:
        self.stream = stream
        self.bus = bus
        self.workers = workers
        self.pool = DetectorPool(workers)
        self.state = AnalysisState(max_in_flight=workers)
        self.latest: AnalysisResult | None = None
        self.completed = 0
        self.detections_total = 0
        self.detector_s_total: dict[str, float] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._tasks_started = 0
        self._has_framecode: bool | None = None

    @property
    def busy(self) -> bool:
        return self.state.in_flight >= self.workers

    def submit(self, frame: Frame, names: tuple[str, ...]) -> bool:
        """Start analysing ``frame`` with ``names``; False (nothing started) when all busy."""
        if not names or self.busy:
            return False
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self.workers, thread_name_prefix="analysis", initializer=_lower_priority
            )
        loop = asyncio.get_running_loop()
        self.state.in_flight += 1
        self.state.last_submitted_seq = frame.seq
        self.state.last_submitted_at = frame.captured_at
        self.bus.emit(AnalysisStarted(self.stream, frame.seq, names))
        job = loop.run_in_executor(self._executor, self._analyse, frame.image, names)
        self._tasks_started += 1
        task = asyncio.ensure_future(self._finish(job, frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _analyse(
        self, image: np.ndarray, names: tuple[str, ...]
    ) -> tuple[list[Detection], dict[str, float]]:
        image = self._hide_framecode(image)
        found: list[Detection] = []
        timings: dict[str, float] = {}
        for name in names:
            started = time.perf_counter()
            found += self.pool.run(name, image)
            timings[name] = time.perf_counter() - started
        return found, timings

    async def _finish(
        self, job: asyncio.Future[tuple[list[Detection], dict[str, float]]], frame: Frame
    ) -> None:
        try:
            found, timings = await job
        finally:
            self.state.in_flight -= 1
        result = AnalysisResult(
            seq=frame.seq,
            captured_at=frame.captured_at,
            finished_at=now(),
            detections=tuple(found),
            detector_s=timings,
            width=frame.width,
            height=frame.height,
        )
        if self.latest is None or result.seq >= self.latest.seq:
            self.latest = result
        self.state.last_result_seq = result.seq
        if "motion" in timings:
            self.state.motion_seen = any(d.label == "motion" for d in found)
        self.completed += 1
        self.detections_total += len(found)
        for name, seconds in timings.items():
            self.detector_s_total[name] = self.detector_s_total.get(name, 0.0) + seconds
        counts: dict[str, int] = {}
        for detection in found:
            counts[detection.label] = counts.get(detection.label, 0) + 1
        self.bus.emit(AnalysisCompleted(self.stream, frame.seq, timings, counts))

    def _hide_framecode(self, image: np.ndarray) -> np.ndarray:
        """Frames that carry a frame code get it blanked (on a copy) so that the corner,
        which changes every frame by design, is not reported as motion."""
        if self._has_framecode is None:
            self._has_framecode = framecode.try_read(image) is not None
        if not self._has_framecode:
            return image
        x, y, w, h = framecode.region(image.shape[1])
        clean = image.copy()
        clean[y : y + h, x : x + w] = 0
        return clean

    def note_delivered(self, frame: Frame) -> None:
        """Update the lag figures from a frame about to leave with ``latest`` attached."""
        if self.latest is not None:
            self.state.lag_frames = frame.seq - self.latest.seq
            self.state.lag_s = frame.captured_at - self.latest.captured_at

    async def close(self) -> None:
        """Wait for analyses in flight, then shut the executor down."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)


ANALYSIS_NICENESS = 10


def _lower_priority() -> None:
    """Analysis threads yield the CPU to decoding and encoding (Linux: per-thread nice).

    OpenCV's own worker pool would run detectors at normal priority, so OpenCV runs
    single-threaded inside each analysis thread; parallelism comes from the workers.
    """
    cv2.setNumThreads(1)
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ANALYSIS_NICENESS)
