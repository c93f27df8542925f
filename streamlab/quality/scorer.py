"""Scoring received frames beside a viewer, never on its receive path.

``submit`` hands a received frame (its I420 planes, already a copy out of the decoder) to
a bounded queue and returns at once; worker threads look the reference up and compute
PSNR / SSIM (OpenCV and numpy release the GIL for the heavy part). When the queue is full
the frame is not scored — a sample is taken instead of slowing the viewer — and counted.
With ``pairs`` (a ``PairWriter``) each scored frame, scaled to the reference's size, and its
reference go on to be saved, from the worker thread.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamlab.quality.metrics import frame_quality, upscale_i420

QUEUE_SIZE = 4
RETRIES = 3
RETRY_S = 0.03  # the server's reference thread may write a frame a moment after encoding it


class References(Protocol):
    """Where reference frames come from (``ReferenceReader``)."""

    def get(self, seq: int) -> np.ndarray | None: ...


class Pairs(Protocol):
    """Where scored pairs go (``PairWriter``): called from the worker, may wait a little."""

    def offer(self, at_ms: float, received: np.ndarray, reference: np.ndarray) -> None: ...


@dataclass(frozen=True, slots=True)
class Scored:
    """One received frame's quality: arrival (ms), seq, PSNR-Y, PSNR-YUV (dB), SSIM-Y, and
    the received size."""

    at_ms: float
    seq: int
    psnr_y: float
    psnr_yuv: float
    ssim_y: float
    width: int
    height: int


@dataclass
class ScorerStats:
    """Frames submitted, scored, not scored because the queue was full (sampled out), and
    without a reference (not found, or overwritten before it was read)."""

    submitted: int = 0
    scored: int = 0
    skipped: int = 0
    unmatched: int = 0


class QualityScorer:
    """Worker threads that score frames against ``references``; results go to ``results``
    (a list the caller may pass in, appended from the workers)."""

    def __init__(
        self,
        references: References,
        *,
        workers: int = 1,
        queue_size: int = QUEUE_SIZE,
        results: list[Scored] | None = None,
        pairs: Pairs | None = None,
    ) -> None:
        self.references = references
        self.pairs = pairs
        self.results: list[Scored] = [] if results is None else results
        self.stats = ScorerStats()
        self._queue: queue.Queue[tuple[float, int, np.ndarray] | None] = queue.Queue(queue_size)
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"quality-scorer-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, at_ms: float, seq: int, yuv: np.ndarray) -> bool:
        """Queue I420 ``yuv`` (owned by the scorer from now on) for scoring; False when the
        queue is full and the frame is skipped. Never blocks."""
        if self._closed:
            return False
        self.stats.submitted += 1
        try:
            self._queue.put_nowait((at_ms, seq, yuv))
        except queue.Full:
            self.stats.skipped += 1
            return False
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Score what is queued and stop the workers (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(timeout_s)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            at_ms, seq, yuv = item
            reference = self._reference(seq)
            if reference is None:
                self.stats.unmatched += 1
                continue
            height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
            scaled = upscale_i420(yuv, reference.shape[1], reference.shape[0] * 2 // 3)
            quality = frame_quality(scaled, reference)
            self.results.append(
                Scored(at_ms, seq, quality.psnr_y, quality.psnr_yuv, quality.ssim_y, width, height)
            )
            self.stats.scored += 1
            if self.pairs is not None:
                self.pairs.offer(at_ms, scaled, reference)

    def _reference(self, seq: int) -> np.ndarray | None:
        for attempt in range(RETRIES):
            reference = self.references.get(seq)
            if reference is not None or attempt == RETRIES - 1:
                return reference
            time.sleep(RETRY_S)
        return None
