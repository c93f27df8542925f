"""The analysis engine: detectors run beside the video; the latest result is kept.

Frames never wait for analysis. ``submit`` hands a frame to a worker only when one is free
(at most ``workers`` analyses in flight) and returns at once; when a result arrives it
becomes ``latest`` and is attached to every later frame. ``isolation="thread"`` runs the
detectors in a bounded thread pool in this process; ``isolation="process"`` in a worker
process fed through shared memory (``streamlab.analysis.worker``), restarted if it dies.
Detectors see the frame's planes at ``analysis_size`` (see ``streamlab.analysis.inputs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import structlog

from streamlab.analysis.detectors import DetectorPool
from streamlab.analysis.inputs import analyse, has_frame_code
from streamlab.analysis.worker import AnalysisWorker
from streamlab.clock import now
from streamlab.detection import AnalysisResult, Detection
from streamlab.errors import ConfigError
from streamlab.events import AnalysisCompleted, AnalysisStarted, EventBus
from streamlab.frame import Frame
from streamlab.strategies.skipping import AnalysisState

log = structlog.get_logger("streamlab.analysis")


class AnalysisEngine:
    """Runs detectors off the event loop with bounded in-flight work."""

    def __init__(
        self, stream: str, bus: EventBus, *, workers: int = 2, analysis_size: int = 640,
        isolation: str = "thread",
    ) -> None:  # fmt: skip
        if isolation not in ("thread", "process"):
            raise ConfigError(f"analysis_isolation must be thread or process, got {isolation!r}")
        self.stream = stream
        self.bus = bus
        self.workers = workers
        self.analysis_size = analysis_size
        self.isolation = isolation
        self.failures = 0
        self.pool = DetectorPool(workers)
        self._worker: AnalysisWorker | None = None
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
        job = loop.run_in_executor(self._executor, self._analyse, frame, names)
        self._tasks_started += 1
        task = asyncio.ensure_future(self._finish(job, frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _analyse(
        self, frame: Frame, names: tuple[str, ...]
    ) -> tuple[list[Detection], dict[str, float]]:
        if self._has_framecode is None:
            self._has_framecode = has_frame_code(frame)
        if self.isolation == "process":
            if self._worker is None:
                self._worker = AnalysisWorker(self.stream, slots=self.workers + 1)
            return self._worker.analyse(
                frame.i420(), frame.seq, names, max_width=self.analysis_size,
                hide_code=self._has_framecode, user=self.pool.user_factories(names),
            )  # fmt: skip
        return analyse(
            self.pool, frame, names, max_width=self.analysis_size, hide_code=self._has_framecode
        )

    @property
    def restarts(self) -> int:
        """How often the worker process was restarted (process isolation)."""
        return 0 if self._worker is None else self._worker.restarts

    @property
    def worker_pid(self) -> int | None:
        return None if self._worker is None else self._worker.pid

    async def _finish(
        self, job: asyncio.Future[tuple[list[Detection], dict[str, float]]], frame: Frame
    ) -> None:
        try:
            found, timings = await job
        except Exception as exc:  # a failed analysis costs that frame's result, nothing more
            self.failures += 1
            report = log.warning if self.failures == 1 else log.info
            report("analysis_failed", stream=self.stream, seq=frame.seq, error=str(exc))
            return
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
        worker, self._worker = self._worker, None
        if worker is not None:
            await asyncio.get_running_loop().run_in_executor(None, worker.close)


ANALYSIS_NICENESS = 10


def _lower_priority() -> None:
    """Analysis threads yield the CPU to decoding and encoding (Linux: per-thread nice).

    OpenCV's own worker pool would run detectors at normal priority, so OpenCV runs
    single-threaded inside each analysis thread; parallelism comes from the workers.
    """
    cv2.setNumThreads(1)
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ANALYSIS_NICENESS)
