"""Saving what was scored: the reference and the received picture, frame by frame, lossless.

A ``PairWriter`` takes the pairs a ``QualityScorer`` has just scored — the received frame
already scaled up to the reference's size (as ``metrics`` scales it), and the reference —
and a thread of its own encodes them into two FFV1 files in one folder:

- ``reference.mkv``: the source frames, at their own size;
- ``received.mkv``: what the viewer showed, scaled up to that size;

frame n of one is the source frame that frame n of the other showed (timestamps are frame
indices at ``RATE``, not arrival times). Only frames that arrived inside the window
(``open_window`` .. ``close_window``, what the figures cover) are kept, at most
``max_frames``. The queue is bounded: ``offer`` waits at most ``put_timeout_s`` (it runs
on the scorer's thread, never the viewer's), then drops the pair and counts it.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE = "reference.mkv"
RECEIVED = "received.mkv"
RATE = 30  # nominal: frame n has pts n
MAX_FRAMES = 300  # 10 s at 30 fps; the synthetic scene: up to 35 MB a file at 640x360, 140 at 720p
QUEUE_SIZE = 8
PUT_TIMEOUT_S = 2.0


@dataclass
class PairStats:
    """Pairs written, dropped (queue full past the timeout, or a size change), and offered
    inside the window past ``max_frames`` (not kept)."""

    written: int = 0
    dropped: int = 0
    beyond: int = 0


class _Output:
    """One FFV1 Matroska file, opened on the first frame (its size fixes the file's)."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        import av

        self.width, self.height = width, height
        self.container: Any = av.open(str(path), mode="w", format="matroska")
        self.stream: Any = self.container.add_stream("ffv1", rate=RATE)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"

    def write(self, yuv: np.ndarray, index: int) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = index, Fraction(1, RATE)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()


class PairWriter:
    """Writes aligned (received, reference) I420 pairs into ``folder`` from its own thread."""

    def __init__(
        self, folder: str | Path, *, max_frames: int = MAX_FRAMES, queue_size: int = QUEUE_SIZE,
        put_timeout_s: float = PUT_TIMEOUT_S,
    ) -> None:  # fmt: skip
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_frames = max_frames
        self.put_timeout_s = put_timeout_s
        self.stats = PairStats()
        self.error = ""
        self._start_ms = math.inf  # nothing is kept before the window opens
        self._end_ms = math.inf
        self._accepted = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[np.ndarray, np.ndarray] | None] = queue.Queue(queue_size)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="quality-pair", daemon=True)
        self._thread.start()

    def open_window(self, start_ms: float) -> None:
        """Keep pairs whose frame arrived at or after ``start_ms`` (epoch ms)."""
        self._start_ms = start_ms

    def close_window(self, end_ms: float) -> None:
        """Keep no pair whose frame arrived at or after ``end_ms``."""
        self._end_ms = end_ms

    def offer(self, at_ms: float, received: np.ndarray, reference: np.ndarray) -> None:
        """Queue one scored pair (owned by the writer from now on) if it arrived inside the
        window; waits at most ``put_timeout_s``, else drops it. Called by scorer threads."""
        if self._closed or not self._start_ms <= at_ms < self._end_ms:
            return
        with self._lock:
            if self._accepted >= self.max_frames:
                self.stats.beyond += 1
                return
            self._accepted += 1
        try:
            self._queue.put((received, reference), timeout=self.put_timeout_s)
        except queue.Full:
            with self._lock:
                self._accepted -= 1
                self.stats.dropped += 1

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, finish both files and stop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        outputs: tuple[_Output, _Output] | None = None
        try:
            while (item := self._queue.get()) is not None:
                received, reference = item
                height, width = reference.shape[0] * 2 // 3, reference.shape[1]
                if outputs is None:
                    outputs = (_Output(self.folder / RECEIVED, width, height),
                               _Output(self.folder / REFERENCE, width, height))  # fmt: skip
                if (width, height) != (outputs[0].width, outputs[0].height):
                    self.stats.dropped += 1  # a source that changed size: the files keep theirs
                    continue
                outputs[0].write(received, self.stats.written)
                outputs[1].write(reference, self.stats.written)
                self.stats.written += 1
        except Exception as exc:  # an encoder error ends the pair, never the scorer
            self.error = f"{type(exc).__name__}: {exc}"
            while self._queue.get() is not None:  # let the scorer's offers through
                self.stats.dropped += 1
        finally:
            for output in outputs or ():
                try:
                    output.close()
                except Exception as exc:
                    self.error = self.error or f"{type(exc).__name__}: {exc}"
