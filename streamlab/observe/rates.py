"""Sliding-window event rates (events per second over the last few seconds)."""

from __future__ import annotations

import threading
from collections import deque

from streamlab.clock import now


class RateMeter:
    """Counts events in a sliding window; bounded memory (``maxlen`` timestamps)."""

    def __init__(self, window_s: float = 5.0, maxlen: int = 4096) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def tick(self, at: float | None = None) -> None:
        with self._lock:
            self._times.append(now() if at is None else at)

    def rate(self, at: float | None = None) -> float:
        """Events per second over the window ending ``at`` (now)."""
        current = now() if at is None else at
        start = current - self.window_s
        with self._lock:
            while self._times and self._times[0] < start:
                self._times.popleft()
            count = len(self._times)
            if count < 2:
                return 0.0
            span = max(current - self._times[0], 1e-6)
        return count / max(span, min(self.window_s, span))
